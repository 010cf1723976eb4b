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

/** Every limits table in force, by name. */
export class Limits {
  static readonly EMPTY: Limits = new Limits([]);
  readonly #tables = new Map<string, Table>();
  readonly #topic: TopicLimits | null;

  /**
   * Tables in the order given; a name given twice keeps its first table. `topic`'s bands come before
   * every entry of the files, for their sensor and table; the topic changes in place (see
   * `topicVersion`), the tables of the files never.
   */
  constructor(declared: readonly DeclaredLimits[], topic: TopicLimits | null = null) {
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
    if (this.#topic !== null && this.#topic.size > 0) {
      const own = this.#topic.entry(sensorId)?.bands.get(name);
      if (own !== undefined) return own;
    }
    return t.byId.get(sensorId) ??
      (location === null || location === undefined ? undefined : t.byLocation.get(location)) ??
      t.byType.get(sensorType) ?? t.fallback;
  }

  /**
   * Goes up with each change of the limits topic's bands: a band resolved under another version still
   * holds if the sensor's `topicEntry` is the same object (a change replaces the entry of its key).
   */
  get topicVersion(): number {
    return this.#topic?.version ?? 0;
  }

  /** The limits topic's entry of a sensor (the same object until its key is written or deleted). */
  topicEntry(sensorId: string): TopicEntry | undefined {
    return this.#topic?.entry(sensorId);
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
const DECODER = new TextDecoder();

/**
 * A limits record's value larger than this is refused unread (and reported): a sensor's bands take a
 * few dozen bytes a table.
 */
export const MAX_LIMITS_VALUE_BYTES = 64 * 1024;
/** Tables one limits record may give bands for; a record naming more is refused. */
export const MAX_LIMITS_TABLES_PER_RECORD = 8;
/**
 * Sensors the limits topic may give bands to; a record of a further sensor is refused (reported) until
 * others are deleted. Measured (scripts/bench/limits_topic_apply.ts): 100,000 sensors of one table
 * each hold 79 MiB of heap, of 8 tables each 248 MiB.
 */
export const MAX_LIMITS_TOPIC_KEYS = 100_000;

/** One sensor's bands from the limits topic, parsed once when its record arrived. */
export interface TopicEntry {
  readonly partition: number;
  readonly offset: string;
  /** By table, the tables no rule file declares included (they apply once one does). */
  readonly bands: ReadonlyMap<string, ResolvedLimits>;
  /** Its tables no rule file declared, already reported (once each for this record); null: none. */
  reported: Set<string> | null;
}

/** A record of the limits topic as read: a null value is a tombstone. */
export interface TopicRecord {
  key: string;
  value: Uint8Array | null;
  partition: number;
  offset: string;
}

/**
 * The bands of the limits topic (key: sensor id; value: `{"<table>": {"min": …, "max": …}}`), kept up
 * to date record by record: each record is parsed once, when it arrives, and only its parsed bands are
 * kept. A record that is not such JSON, is too large, or is of a sensor beyond the cap, is reported and
 * left out (its sensor keeps the files' bands). A band for a table no rule file declares is reported
 * and kept: it applies once a rule file declares the table.
 */
export class TopicLimits {
  readonly name: string;
  readonly #entries = new Map<string, TopicEntry>();
  readonly #maxKeys: number;
  /** Goes up with every change of a sensor's bands. */
  version = 0;
  /** Records parsed since start (each once). */
  parsed = 0;

  constructor(name: string, opts: { maxKeys?: number } = {}) {
    this.name = name;
    this.#maxKeys = opts.maxKeys ?? MAX_LIMITS_TOPIC_KEYS;
  }

  get size(): number {
    return this.#entries.size;
  }

  entry(sensorId: string): TopicEntry | undefined {
    return this.#entries.get(sensorId);
  }

  /**
   * Applies one record: its sensor's bands are replaced, or removed by a tombstone or a bad record.
   * `report` gets each problem; `declared` tells the tables of the rule files.
   */
  apply(record: TopicRecord, declared: (table: string) => boolean, report: (message: string) => void): void {
    const { key, value } = record;
    const had = this.#entries.delete(key);
    if (had) this.version++;
    if (value === null) return;
    const at = `${this.name}:${record.partition}@${record.offset}`;
    if (value.length > MAX_LIMITS_VALUE_BYTES) {
      report(`Value of ${value.length} bytes at ${at}, over the limit of ${MAX_LIMITS_VALUE_BYTES} bytes`);
      return;
    }
    if (!had && this.#entries.size >= this.#maxKeys) {
      report(
        `The limits topic gives bands to ${this.#entries.size} sensors, its limit: the record at ${at} ` +
          "of a further sensor is left out until others are deleted",
      );
      return;
    }
    this.parsed++;
    let json: unknown;
    try {
      json = JSON.parse(DECODER.decode(value));
    } catch (err) {
      report(`Not JSON: ${(err as Error).message} (${at})`);
      return;
    }
    const parsed = TopicValue.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      report(`At "${issue.path.join(".")}": ${issue.message} (${at})`);
      return;
    }
    const tables = Object.entries(parsed.data);
    if (tables.length > MAX_LIMITS_TABLES_PER_RECORD) {
      report(
        `${tables.length} tables at ${at}, over the limit of ${MAX_LIMITS_TABLES_PER_RECORD} for a limits record`,
      );
      return;
    }
    const bands = new Map<string, ResolvedLimits>();
    for (const [table, band] of tables) {
      const origin: LimitsOrigin = {
        min: band.min ?? null,
        max: band.max ?? null,
        from: "topic",
        key,
        table,
        source: at,
      };
      bands.set(table, {
        ...origin,
        below: band.min === undefined ? null : { threshold: band.min, bound: "min", limits: origin },
        above: band.max === undefined ? null : { threshold: band.max, bound: "max", limits: origin },
      });
    }
    if (bands.size === 0) return;
    const entry: TopicEntry = {
      partition: record.partition,
      offset: record.offset,
      bands,
      reported: new Set(),
    };
    this.#entries.set(key, entry);
    this.version++;
    this.#reportUndeclared(entry, declared, report);
  }

  /**
   * Reports the tables of every entry that no rule file declares, once per record: for a reload that
   * changed the tables' names.
   */
  reportUndeclared(
    declared: (table: string) => boolean,
    report: (sensorId: string, message: string) => void,
  ): void {
    for (const [key, entry] of this.#entries) {
      this.#reportUndeclared(entry, declared, (message) => report(key, message));
    }
  }

  #reportUndeclared(
    entry: TopicEntry,
    declared: (table: string) => boolean,
    report: (message: string) => void,
  ): void {
    for (const table of entry.bands.keys()) {
      if (declared(table) || entry.reported?.has(table)) continue;
      (entry.reported ??= new Set()).add(table);
      report(
        `No limits table named "${table}" in the rule files: declare it there (it may be empty) ` +
          `(${this.name}:${entry.partition}@${entry.offset})`,
      );
    }
  }
}
