/**
 * Inhibit rules (`inhibit:` in a rule file), compiled to the three functions they are made of (does an
 * alert match the source, the target, and what are its `equal` values), and the `Inhibitor` that applies
 * them to a stream of alerts: the notifier stage's, and `rules:test`'s in virtual time.
 *
 * @module
 */
import type { SensorAlert } from "../contract/schemas.ts";
import { globMatcher } from "../contract/matcher.ts";
import type { RuleSource } from "./compile.ts";
import type { AlertMatcher, Inhibition } from "./schema.ts";

/** The fields of an alert an inhibit rule reads. */
export type InhibitedAlert = Pick<
  SensorAlert,
  "alert_id" | "rule_id" | "priority" | "sensor_type" | "sensor_id" | "location" | "labels" | "group"
>;

export interface CompiledInhibition {
  readonly inhibition: Inhibition;
  /** Where the inhibit rule was written. */
  readonly source_location: RuleSource;
  source(alert: InhibitedAlert): boolean;
  target(alert: InhibitedAlert): boolean;
  /** The alert's `equal` values as one key: a source inhibits the targets with the same key. */
  key(alert: InhibitedAlert): string;
}

export function compileInhibition(inhibition: Inhibition, at: RuleSource): CompiledInhibition {
  const fields = inhibition.equal.map((f): (a: InhibitedAlert) => unknown =>
    f.startsWith("labels.")
      ? (a) => a.labels?.[f.slice("labels.".length)]
      : (a) => (a as unknown as Record<string, unknown>)[f]
  );
  return {
    inhibition,
    source_location: at,
    source: matcher(inhibition.source),
    target: matcher(inhibition.target),
    // JSON of the values: a missing one (undefined → null) never equals a present string.
    key: (a) => JSON.stringify(fields.map((f) => f(a) ?? null)),
  };
}

function matcher(m: AlertMatcher): (a: InhibitedAlert) => boolean {
  const list = <T>(v: T | T[] | undefined): T[] | null => v === undefined ? null : Array.isArray(v) ? v : [v];
  const ruleIds = list(m.rule_id);
  const priorities = list(m.priority);
  const types = list(m.sensor_type);
  const ids = list(m.sensor_id)?.map(globMatcher) ?? null;
  const locations = list(m.location)?.map(globMatcher) ?? null;
  const labels = Object.entries(m.labels ?? {});
  return (a) =>
    (ruleIds === null || ruleIds.includes(a.rule_id)) &&
    (priorities === null || priorities.includes(a.priority)) &&
    (types === null || types.includes(a.sensor_type)) &&
    (ids === null || ids.some((m) => m(a.sensor_id))) &&
    (locations === null || locations.some((m) => m(a.location ?? ""))) &&
    labels.every(([k, v]) => a.labels?.[k] === v);
}

/** The firing sources of one inhibit rule with one key: all, and those that are no target of it. */
interface Sources {
  all: Set<string>;
  only: Set<string>;
}

/**
 * Firing alerts the Inhibitor keeps at most. The engines' own limits bound what they raise (at most
 * MAX_SENSORS_PER_PARTITION sensors per partition), but anyone who can write to the alerts topic can
 * send firing alerts with fresh ids that nothing resolves: ~250 bytes each with small labels, and up to
 * the broker's record size with large ones (1,000 alerts of 1 MB labels held ~1 GB). Past either cap
 * the oldest goes: its targets are notified again (failing open, not silent).
 */
export const MAX_FIRING = 200_000;
/** Characters of the kept alerts' ids and label keys and values, at most (~128 MB of UTF-16). */
export const MAX_FIRING_CHARS = 64 * 1024 * 1024;

/**
 * Rules `counts()` keeps a count of their own, at most; the inhibited alerts of any other rule, and of
 * a rule id longer than `MAX_COUNTED_RULE_ID`, are counted under `OTHER_RULES`. The rule id comes off
 * the alerts topic, where anyone who can write chooses it: each inhibited alert under an invented id
 * was an entry kept for ever, and a series of sensor_notifications_inhibited_total on every scrape
 * (and a 900 KB id a 900 KB label).
 */
export const MAX_COUNTED_RULES = 1_000;
/** Longest rule id counted on its own (as an alert id, at most 256 characters). */
export const MAX_COUNTED_RULE_ID = 256;
/** The `rule` the inhibited alerts of the rules not counted on their own are counted under. */
export const OTHER_RULES = "(other)";

/** What a kept alert weighs against MAX_FIRING_CHARS: its strings' lengths. */
function weigh(a: InhibitedAlert): number {
  let n = a.alert_id.length + a.rule_id.length + a.sensor_id.length + (a.location?.length ?? 0) +
    (a.group?.length ?? 0);
  for (const [k, v] of Object.entries(a.labels)) n += k.length + String(v).length;
  return n;
}

/**
 * The alerts firing now (by alert id; in the service from every partition of the alerts topic,
 * src/notifiers/firing_view.ts) and, per inhibit rule, the `equal` keys of those matching its source.
 * A target alert whose key is among them is not notified.
 */
export class Inhibitor {
  readonly #rules: () => readonly CompiledInhibition[];
  /** Firing alerts, reduced to what inhibit rules read. */
  readonly #firing = new Map<string, InhibitedAlert>();
  /**
   * Per inhibit rule: its sources' keys → the firing source alerts with that key, and those of them
   * that do not match the target too. Rebuilt on reload.
   */
  #index = new Map<CompiledInhibition, Map<string, Sources>>();
  #indexed: readonly CompiledInhibition[] = [];
  readonly #counts = new Map<string, number>();
  /** Firing alerts forgotten at `MAX_FIRING` or `MAX_FIRING_CHARS`, oldest first. */
  dropped = 0;
  readonly #maxFiring: number;
  readonly #maxChars: number;
  /** The weight of the kept alerts (`weigh`). */
  #chars = 0;
  /** Alerts notified as firing, not yet resolved. */
  readonly #seen = new Set<string>();
  /** Alerts whose every firing notice was inhibited, not yet resolved. */
  readonly #unseen = new Set<string>();

  readonly #ends: (ruleId: string) => boolean;

  /**
   * `ends(ruleId)`: false for a rule whose alerts no resolved notice ends (`notify_resolved: false`).
   * Such a rule cannot be a source by id (the loader refuses it), and keeping its alerts as firing
   * would grow this map by every episode, for ever.
   */
  constructor(
    rules: () => readonly CompiledInhibition[],
    ends: (ruleId: string) => boolean = () => true,
    maxFiring = MAX_FIRING,
    maxChars = MAX_FIRING_CHARS,
  ) {
    this.#rules = rules;
    this.#ends = ends;
    this.#maxFiring = maxFiring;
    this.#maxChars = maxChars;
  }

  /** Records an alert's state: firing (an ack update included) or resolved. */
  observe(alert: SensorAlert): void {
    const rules = this.#current();
    const before = this.#firing.get(alert.alert_id);
    if (before !== undefined) {
      this.#firing.delete(alert.alert_id);
      this.#chars -= weigh(before);
      this.#unindex(rules, before);
    }
    // A storm guard's summary stands for alerts already seen, and no resolved notice ever follows it.
    if (alert.state !== "firing" || typeof alert.rule_id !== "string" || alert.storm !== undefined) return;
    if (!this.#ends(alert.rule_id)) return;
    const lite: InhibitedAlert = {
      alert_id: alert.alert_id,
      rule_id: alert.rule_id,
      priority: alert.priority,
      sensor_type: alert.sensor_type,
      sensor_id: alert.sensor_id,
      location: alert.location ?? null,
      labels: alert.labels ?? {},
      ...(typeof alert.group === "string" ? { group: alert.group } : {}),
    };
    const weight = weigh(lite);
    while (
      this.#firing.size > 0 && (this.#firing.size >= this.#maxFiring || this.#chars + weight > this.#maxChars)
    ) {
      const [oldest, a] = this.#firing.entries().next().value!;
      this.#firing.delete(oldest);
      this.#chars -= weigh(a);
      this.#unindex(rules, a);
      this.dropped++;
    }
    this.#chars += weight;
    this.#firing.set(alert.alert_id, lite);
    this.#indexOne(rules, lite);
  }

  /**
   * True when the alert's notification is held back: a firing one whose target a firing source with
   * the same `equal` values inhibits; a resolved one whose receivers never saw it fire.
   */
  inhibits(alert: SensorAlert): boolean {
    const id = alert.alert_id;
    let inhibited: boolean;
    if (alert.state === "firing") {
      inhibited = this.inhibitedBy(alert) !== null;
      if (!inhibited) {
        this.#unseen.delete(id);
        remember(this.#seen, id);
      } else if (!this.#seen.has(id)) {
        remember(this.#unseen, id);
      }
    } else {
      // A resolved notice is owed to receivers that saw the alert fire (even if a source fires now:
      // else a pager keeps it open for good), and held back from those that never did (even once
      // the source has resolved); a silenced alert that resolved while inhibited is then not
      // released as firing when its silence ends. Of an alert not seen here, the sources decide.
      inhibited = this.#seen.delete(id) ? false : this.#unseen.delete(id) || this.inhibitedBy(alert) !== null;
    }
    if (inhibited) this.#count(alert.rule_id);
    return inhibited;
  }

  /** One more inhibited alert of `rule` (see `MAX_COUNTED_RULES`). */
  #count(rule: string): void {
    const own = this.#counts.get(rule);
    if (own !== undefined) {
      this.#counts.set(rule, own + 1);
      return;
    }
    const room = this.#counts.size - (this.#counts.has(OTHER_RULES) ? 1 : 0) < MAX_COUNTED_RULES;
    const key = room && rule.length <= MAX_COUNTED_RULE_ID ? rule : OTHER_RULES;
    this.#counts.set(key, (this.#counts.get(key) ?? 0) + 1);
  }

  /**
   * The firing source alert that inhibits this one now (the first inhibit rule's), or null; counts
   * nothing, and judges a resolved alert by its sources alone.
   */
  inhibitedBy(alert: InhibitedAlert): InhibitedAlert | null {
    for (const r of this.#current()) {
      if (!r.target(alert)) continue;
      const sources = this.#index.get(r)!.get(r.key(alert));
      if (sources === undefined) continue;
      // An alert that matches both sides is inhibited only by a source that is not a target too, as
      // in Alertmanager: else two critical alerts under "critical inhibits high and critical" would
      // silence each other (and an alert would silence itself).
      const ids = r.source(alert) ? sources.only : sources.all;
      for (const id of ids) {
        if (id !== alert.alert_id) return this.#firing.get(id)!;
      }
    }
    return null;
  }

  /** Notifications not sent because of an inhibition, by rule. */
  counts(): ReadonlyMap<string, number> {
    return this.#counts;
  }

  /** Firing alerts known now. */
  get firing(): number {
    return this.#firing.size;
  }

  #indexOne(rules: readonly CompiledInhibition[], a: InhibitedAlert): void {
    for (const r of rules) {
      if (!r.source(a)) continue;
      const byKey = this.#index.get(r)!;
      const key = r.key(a);
      let sources = byKey.get(key);
      if (sources === undefined) byKey.set(key, sources = { all: new Set(), only: new Set() });
      sources.all.add(a.alert_id);
      if (!r.target(a)) sources.only.add(a.alert_id);
    }
  }

  #unindex(rules: readonly CompiledInhibition[], a: InhibitedAlert): void {
    for (const r of rules) {
      if (!r.source(a)) continue;
      const byKey = this.#index.get(r)!;
      const key = r.key(a);
      const sources = byKey.get(key);
      if (sources === undefined) continue;
      sources.all.delete(a.alert_id);
      sources.only.delete(a.alert_id);
      if (sources.all.size === 0) byKey.delete(key);
    }
  }

  /** The rules in force, with the index rebuilt when a reload changed them. */
  #current(): readonly CompiledInhibition[] {
    const rules = this.#rules();
    if (rules === this.#indexed) return rules;
    this.#indexed = rules;
    this.#index = new Map(rules.map((r) => [r, new Map()]));
    for (const a of this.#firing.values()) this.#indexOne(rules, a);
    return rules;
  }
}

/** Alerts an inhibitor remembers in each set, at most (~10 MB of ids): alerts that never resolve. */
const MAX_REMEMBERED = 100_000;

function remember(set: Set<string>, id: string): void {
  set.add(id);
  if (set.size > MAX_REMEMBERED) set.delete(set.values().next().value!);
}
