/**
 * Reads the dispatcher's plain counters at scrape time. The dispatcher's shape grows with the
 * notifier work (per-notifier counters, circuit breakers), so this accepts both the flat
 * `{ delivered, failed }` of the first version (reported as notifier "all") and a per-notifier map.
 *
 * @module
 */

export interface NotifierStats {
  notifier: string;
  /** Outcome → count: delivered, failed, dead_lettered, … */
  outcomes: Record<string, number>;
  /** closed, half-open, open; null when the dispatcher has no breaker for it. */
  breaker: string | null;
  inFlight: number | null;
}

/** The per-notifier counters of a dispatcher, whichever of the known shapes it has. */
export function notifierStats(dispatcher: unknown): NotifierStats[] {
  if (dispatcher === null || typeof dispatcher !== "object") return [];
  const d = dispatcher as Record<string, unknown>;
  const source = typeof d.stats === "function" ? (d.stats as () => unknown).call(d) : d.counters;
  if (source === null || typeof source !== "object") return [];
  const entries: [string, unknown][] = source instanceof Map
    ? [...source.entries()].map(([k, v]) => [String(k), v])
    : Array.isArray(source)
    ? source.map((
      v,
    ) => [String((v as Record<string, unknown>)?.notifier ?? (v as Record<string, unknown>)?.name), v])
    : Object.entries(source);
  if (entries.some(([, v]) => typeof v === "number")) {
    return [{
      notifier: "all",
      outcomes: numbers(source as Record<string, unknown>),
      breaker: null,
      inFlight: null,
    }];
  }
  return entries.flatMap(([name, v]) => {
    if (v === null || typeof v !== "object") return [];
    const fields = v as Record<string, unknown>;
    const inFlight = typeof fields.in_flight === "number" ? fields.in_flight : null;
    return [{ notifier: name, outcomes: numbers(fields), breaker: breakerState(fields), inFlight }];
  });
}

function numbers(o: Record<string, unknown>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(o)) {
    // A gauge among the counters is not an outcome.
    if (k !== "in_flight" && typeof v === "number" && Number.isFinite(v)) out[k] = v;
  }
  return out;
}

function breakerState(o: Record<string, unknown>): string | null {
  const b = o.breaker ?? o.circuit;
  if (typeof b === "string") return b;
  if (b !== null && typeof b === "object" && typeof (b as { state?: unknown }).state === "string") {
    return (b as { state: string }).state;
  }
  return null;
}
