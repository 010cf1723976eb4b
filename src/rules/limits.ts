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
import type { LimitTable } from "./schema.ts";

/** Where a sensor's band came from: the level of the table, its key there, the table and its place. */
export interface LimitsOrigin {
  min: number | null;
  max: number | null;
  /** `sensor_id`, `location`, `sensor_type` or `default`. */
  from: "sensor_id" | "location" | "sensor_type" | "default";
  /** The sensor id, location or sensor type of the entry; absent for the default. */
  key?: string;
  table: string;
  /** `file:line` of the entry. */
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

/** Every limits table in force, by name. */
export class Limits {
  static readonly EMPTY: Limits = new Limits([]);
  readonly #tables = new Map<string, Table>();

  /** Tables in the order given; a name given twice keeps its first table. */
  constructor(declared: readonly DeclaredLimits[]) {
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
