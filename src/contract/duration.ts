/**
 * The duration grammar rule files and settings share: `250ms`, `30s`, `5m`, `1h30m`, `1d`.
 *
 * @module
 */

/** A duration text: one or more number-unit pairs. */
export const DURATION_PATTERN: RegExp = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+$/;

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Milliseconds of a duration text, or of a number of seconds. */
export function durationMs(d: number | string): number {
  if (typeof d === "number") return d * 1000;
  if (!DURATION_PATTERN.test(d)) throw new TypeError(`Cannot parse duration "${d}"`);
  let total = 0;
  for (const m of d.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d)/g)) total += Number(m[1]) * UNIT_MS[m[2]!]!;
  return total;
}
