/**
 * Per-sensor limits: the tables of `limits:` in rule files, which a rule with `limits: <name>` uses as
 * its threshold. The most specific entry applies (sensor id, then location, then sensor type, then the
 * default), looked up for each event, so an edited table applies to each sensor's next event while
 * the rule, and its open episodes, stay as they are.
 *
 * @module
 */
import type { Verdict } from "../contract/records.ts";
import type { RuleSource } from "./compile.ts";
import { z } from "zod";
import { LimitBand, LIMITS_NAME, type LimitTable } from "./schema.ts";

/** Where a sensor's band came from: the level of the table, its key there, the table and its place. */
export interface LimitsOrigin {
  min: number | null;
  max: number | null;
  /** `topic` (LIMITS_TOPIC), `sensor_id`, `location`, `sensor_type` or `default`. */
  from: "topic" | "sensor_id" | "location" | "sensor_type" | "default";
  /** The sensor id, location or sensor type of the entry; absent for the default. */
  key?: string;
  table: string;
  /** `file:line` of the entry, or `topic:partition@offset` of the topic's record. */
  source: string;
}

/** One entry, ready to judge a value without allocating. */
export interface ResolvedLimits extends LimitsOrigin {
  readonly below: Verdict | null;
  readonly above: Verdict | null;
}

interface Table {
  byId: Map<string, ResolvedLimits>;
  byLocation: Map<string, ResolvedLimits>;
  byType: Map<string, ResolvedLimits>;
  fallback: ResolvedLimits | null;
  source: RuleSource;
}

/** A limits table as a rule file declares it, located for messages. */
export interface DeclaredLimits {
  name: string;
  table: LimitTable;
  source: RuleSource;
  /** `file:line` of each entry, by `level\u0000key` (`default` for the default). */
  entryLines: ReadonlyMap<string, number>;
}

/** Bands from the limits topic: by sensor id, then by table. */
export type TopicLimits = ReadonlyMap<string, ReadonlyMap<string, ResolvedLimits>>;

/** Every limits table in force, by name. */
export class Limits {
  static readonly EMPTY: Limits = new Limits([]);
  readonly #tables = new Map<string, Table>();
  readonly #topic: TopicLimits;

  /**
   * Tables in the order given; a name given twice keeps its first table. `topic`'s bands come before
   * every entry of the files, for their sensor and table.
   */
  constructor(declared: readonly DeclaredLimits[], topic: TopicLimits = new Map()) {
    this.#topic = topic;
    for (const d of declared) {
      if (this.#tables.has(d.name)) continue;
      const entry = (
        from: LimitsOrigin["from"],
        key: string | undefined,
        band: { min?: number | undefined; max?: number | undefined },
      ): ResolvedLimits => {
        const line = d.entryLines.get(`${from}\u0000${key ?? ""}`) ?? d.source.line;
        const origin: LimitsOrigin = {
          min: band.min ?? null,
          max: band.max ?? null,
          from,
          ...(key === undefined ? {} : { key }),
          table: d.name,
          source: `${d.source.file}:${line}`,
        };
        return {
          ...origin,
          below: band.min === undefined ? null : { threshold: band.min, bound: "min", limits: origin },
          above: band.max === undefined ? null : { threshold: band.max, bound: "max", limits: origin },
        };
      };
      const level = (from: "sensor_id" | "location" | "sensor_type", rec: object | undefined) =>
        new Map(Object.entries(rec ?? {}).map(([k, band]) => [k, entry(from, k, band)]));
      this.#tables.set(d.name, {
        byId: level("sensor_id", d.table.sensor_id),
        byLocation: level("location", d.table.location),
        byType: level("sensor_type", d.table.sensor_type),
        fallback: d.table.default === undefined ? null : entry("default", undefined, d.table.default),
        source: d.source,
      });
    }
  }

  names(): string[] {
    return [...this.#tables.keys()];
  }

  has(name: string): boolean {
    return this.#tables.has(name);
  }

  /** The band that applies to a sensor, or null when the table has none for it (or does not exist). */
  resolve(
    name: string,
    sensorId: string,
    location: string | null | undefined,
    sensorType: string,
  ): ResolvedLimits | null {
    const t = this.#tables.get(name);
    if (t === undefined) return null;
    if (this.#topic.size > 0) {
      const own = this.#topic.get(sensorId)?.get(name);
      if (own !== undefined) return own;
    }
    return t.byId.get(sensorId) ??
      (location === null || location === undefined ? undefined : t.byLocation.get(location)) ??
      t.byType.get(sensorType) ?? t.fallback;
  }

  /** Every band of a table (for checks across them, such as a rule's hysteresis). */
  entries(name: string): ResolvedLimits[] {
    const t = this.#tables.get(name);
    if (t === undefined) return [];
    return [
      ...t.byId.values(),
      ...t.byLocation.values(),
      ...t.byType.values(),
      ...(t.fallback ? [t.fallback] : []),
    ];
  }
}

const TopicValue = z.record(z.string().regex(LIMITS_NAME), LimitBand);

/**
 * The bands of the limits topic's records (key: sensor id; value: `{"<table>": {"min": …, "max": …}}`).
 * A record that is not such JSON is reported and left out (its sensor keeps the files' bands), as is
 * a band for a table no rule file declares.
 */
export function topicLimits(
  topic: string,
  records: ReadonlyMap<string, { value: string; partition: number; offset: string }>,
  declared: (table: string) => boolean,
  report: (sensorId: string, message: string) => void,
): Map<string, Map<string, ResolvedLimits>> {
  const out = new Map<string, Map<string, ResolvedLimits>>();
  for (const [sensorId, r] of records) {
    let json: unknown;
    try {
      json = JSON.parse(r.value);
    } catch (err) {
      report(sensorId, `Not JSON: ${(err as Error).message}`);
      continue;
    }
    const parsed = TopicValue.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      report(sensorId, `At "${issue.path.join(".")}": ${issue.message}`);
      continue;
    }
    const bands = new Map<string, ResolvedLimits>();
    for (const [table, band] of Object.entries(parsed.data)) {
      if (!declared(table)) {
        report(
          sensorId,
          `No limits table named "${table}" in the rule files: declare it there (it may be empty)`,
        );
        continue;
      }
      const origin: LimitsOrigin = {
        min: band.min ?? null,
        max: band.max ?? null,
        from: "topic",
        key: sensorId,
        table,
        source: `${topic}:${r.partition}@${r.offset}`,
      };
      bands.set(table, {
        ...origin,
        below: band.min === undefined ? null : { threshold: band.min, bound: "min", limits: origin },
        above: band.max === undefined ? null : { threshold: band.max, bound: "max", limits: origin },
      });
    }
    if (bands.size > 0) out.set(sensorId, bands);
  }
  return out;
}
