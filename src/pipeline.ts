/**
 * The engine's way for one batch of records: decode → validate → duplicate check → stats → rules →
 * alerts, with every failure turned into a DLQ record. `process` resolves once the batch's alerts and
 * DLQ records are durable, so the source may commit the batch's offsets after it.
 *
 * @module
 */
import { alertKey, type DlqRecord, type DlqStage, type SensorAlert, sensorKey } from "./contract/schemas.ts";
import { DuplicateFilter } from "./decode/dedupe.ts";
import { type DecodedEvent, decodeEvent, type DecodeOptions, tooLarge } from "./decode/decode.ts";
import { buildDlqRecord, type DlqInput } from "./dlq/record.ts";
import type { Logger } from "./log.ts";
import type { StateChange } from "./rules/changes.ts";
import { emptyOutput, type EngineOutput, RuleEngine, SensorLimitError } from "./rules/engine.ts";
import { WindowGroupLimitError } from "./rules/windows.ts";
import type { RuleProblem } from "./rules/load.ts";
import type { RuleSet } from "./rules/ruleset.ts";
import { StatsStore } from "./stats/stats.ts";
import type { Output, OutRecord } from "./transport/output.ts";
import type { InputRecord } from "./contract/records.ts";

export type { InputRecord } from "./contract/records.ts";

export interface Topics {
  alerts: string;
  dlq: string;
  aggregates?: string;
}

/** Hooks for the operator's view (API, dashboard); called synchronously, must not throw. */
export interface PipelineObserver {
  onEvent?(e: DecodedEvent, record: InputRecord): void;
  onAlert?(alert: SensorAlert): void;
  onDeadLetter?(stage: string, error: string, record: InputRecord): void;
  /** After a rule reload (hot reload of rules/*.yaml). */
  onReload?(e: { rules: number; changed: boolean; problems: RuleProblem[] }): void;
  /** Once per batch, so a timing histogram costs nothing per event. */
  onBatch?(records: number, seconds: number): void;
  /** Sensors whose stats changed in another thread (an engine worker's snapshot). */
  onSensors?(sensorIds: readonly string[]): void;
  /** Whether someone watches sensor updates now (a dashboard): engine workers send them only then. */
  wantsSensors?(): boolean;
}

export interface PipelineOptions {
  ruleSet: () => RuleSet;
  output: Output;
  topics: Topics;
  logger: Logger;
  decode?: DecodeOptions;
  dedupeCapacity?: number;
  /** Sensors whose state each partition's engine keeps (RuleEngine's `maxSensors`). */
  maxSensors?: number;
  observer?: PipelineObserver;
  /**
   * Checkpointing: keep one engine per input partition and record what changes, so `checkpoint`
   * can write it to the state changelog (and `restore` read it back) partition by partition.
   */
  checkpoint?: boolean;
  /**
   * `wall` (live streams): the engine clock never passes the wall clock and moves on with it while
   * idle. `event` (replay): event time alone; `tick` does nothing and `flush` ends the input.
   */
  clock?: "wall" | "event";
}

/** The state of one input partition: its rule engine and its duplicate filter. */
export interface PartitionState {
  engine: RuleEngine;
  dedupe: DuplicateFilter;
}

/** Event ids a checkpoint keeps per partition, for the duplicate check after a restart. */
export const CHECKPOINT_RECENT_IDS = 500;

/**
 * Output records larger than this are dead-lettered instead of published: the broker's default
 * `max.message.bytes` is 1 MiB, and a record it refuses would be retried forever, stalling the partition.
 */
export const MAX_OUTPUT_RECORD_BYTES = 900 * 1024;

/** Every event ends as exactly one of accepted, duplicate or dead-lettered: `events` is their sum. */
export interface Counters {
  events: number;
  /** Events that went through every stage without a failure. */
  accepted: number;
  duplicates: number;
  /** Events that went to the DLQ (at any stage; one event may leave several DLQ records). */
  dead_lettered: number;
  /** DLQ records written, by stage. */
  dead_letters: Record<string, number>;
  alerts: number;
  /** AggregatedSensorEvents published. */
  aggregates: number;
  /** Events that arrived after their window closed (left out of the aggregate). */
  late_events: number;
  /** Sensors the engines forgot at their limit (they held only their newest event time). */
  sensors_forgotten: number;
  /** Partial sequence matches dropped: `cap` (their group held `max_open`), `timeout` (no B within). */
  sequence_dropped: { cap: number; timeout: number };
  /**
   * Pieces of state a checkpoint could not write (over `MAX_STATE_RECORD_BYTES`, or not
   * serialisable): written as tombstones, so a restore forgets them. Counted per checkpoint.
   */
  state_unwritten: number;
  /** Records read, by `topic\u0000partition` (partition "none" outside Kafka); counted per batch. */
  consumed: Map<string, number>;
  /** Refused events by `stage\u0000reason`. */
  invalid: Map<string, number>;
}

/** Counters of nothing processed yet (a pipeline's start, the sum of engine workers' counters). */
export function emptyCounters(): Counters {
  return {
    events: 0,
    accepted: 0,
    duplicates: 0,
    dead_lettered: 0,
    dead_letters: {},
    alerts: 0,
    aggregates: 0,
    late_events: 0,
    sensors_forgotten: 0,
    sequence_dropped: { cap: 0, timeout: 0 },
    state_unwritten: 0,
    consumed: new Map(),
    invalid: new Map(),
  };
}

/** What each partition's engine counts, summed into `counters`. */
const ENGINE_COUNTS = ["lateEvents", "sensorsForgotten", "sequenceDropped", "sequenceExpired"] as const;
type EngineCount = typeof ENGINE_COUNTS[number];

export class Pipeline {
  readonly stats = new StatsStore();
  readonly #partitions = new Map<number | null, PartitionState>();
  /**
   * What the engines of partitions dropped since (revoked, failed, restored anew) had counted: the
   * counters summed over partitions go on from it, never down (Prometheus reads a counter that went
   * down as a restart, and `rate()` counts its whole value again).
   */
  readonly #retired: Record<EngineCount, number> = {
    lateEvents: 0,
    sensorsForgotten: 0,
    sequenceDropped: 0,
    sequenceExpired: 0,
  };
  readonly #idsSavedAt = new Map<number | null, number>();
  readonly counters: Counters = emptyCounters();
  readonly #opts: PipelineOptions;
  #ruleSet: RuleSet | null = null;

  constructor(opts: PipelineOptions) {
    this.#opts = opts;
  }

  /**
   * The state of a partition (null: records without one), created empty on first use. One per
   * partition in every mode: each partition's event time is its own, as in Kafka Streams.
   */
  partition(p: number | null): PartitionState {
    let state = this.#partitions.get(p);
    if (state === undefined) {
      const engine = new RuleEngine(
        this.#opts.maxSensors === undefined ? {} : { maxSensors: this.#opts.maxSensors },
      );
      if (this.#opts.checkpoint) engine.trackChanges();
      if (this.#ruleSet !== null) engine.setRules(this.#ruleSet);
      state = { engine, dedupe: new DuplicateFilter(this.#opts.dedupeCapacity) };
      this.#partitions.set(p, state);
    }
    return state;
  }

  /** Forgets a partition's state (revoked in a rebalance, or its last batch failed to commit). */
  dropPartition(p: number | null): void {
    this.#retire(p);
  }

  #retire(p: number | null): void {
    const state = this.#partitions.get(p);
    if (state === undefined) return;
    for (const key of ENGINE_COUNTS) this.#retired[key] += state.engine[key];
    this.#partitions.delete(p);
  }

  /** Rebuilds a partition's state from its changelog entries (newest last). */
  restorePartition(p: number, changes: Iterable<StateChange>, recentIds: Iterable<string>): number {
    this.#currentRules();
    this.#retire(p);
    const state = this.partition(p);
    for (const id of recentIds) state.dedupe.seen(id);
    state.dedupe.duplicates = 0;
    const applied = state.engine.importState(changes);
    state.engine.takeChanges();
    return applied;
  }

  /**
   * Ends the state of partition `p`'s sensors that left it (`stays` says whether a sensor key still
   * belongs to it); returns the resolved notices to publish.
   */
  release(p: number, stays: (sensorKey: string) => boolean): OutRecord[] {
    const state = this.#partitions.get(p);
    if (state === undefined) return [];
    const result = emptyOutput();
    const out: OutRecord[] = [];
    const n = state.engine.releaseSensors(stays, result);
    this.#drain(result, out, null);
    if (n > 0) {
      this.#opts.logger.warn("Sensors moved to other partitions: their state here ended", {
        partition: p,
        sensors: n,
      });
    }
    return out;
  }

  /** True when a partition's state changed since its last checkpoint. */
  changed(p: number | null): boolean {
    return this.#partitions.get(p)?.engine.changed ?? false;
  }

  /** What changed in a partition since its last checkpoint, and its newest event ids. */
  checkpoint(p: number | null, now = Date.now()): { changes: StateChange[]; recentIds: string[] | null } {
    const state = this.#partitions.get(p);
    if (state === undefined) return { changes: [], recentIds: null };
    // The recent ids guard against a producer's retries across a restart; once a second is enough
    // for that, and saves ~10 kB per batch.
    let recentIds: string[] | null = null;
    if (now - (this.#idsSavedAt.get(p) ?? 0) >= 1000) {
      this.#idsSavedAt.set(p, now);
      recentIds = state.dedupe.recent(CHECKPOINT_RECENT_IDS);
    }
    return { changes: state.engine.takeChanges(), recentIds };
  }

  /** The engine of records without a partition: the only one outside Kafka. */
  get engine(): RuleEngine {
    return this.partition(null).engine;
  }

  get dedupe(): DuplicateFilter {
    return this.partition(null).dedupe;
  }

  /** Processes a batch; resolves when its alerts and DLQ records are durable. */
  async process(records: readonly InputRecord[]): Promise<void> {
    const out = this.evaluate(records);
    if (out.length > 0) await this.#opts.output.send(out);
  }

  /** The synchronous part of `process`: everything but the wait for durability. */
  evaluate(records: readonly InputRecord[]): OutRecord[] {
    this.#currentRules();
    const { observer } = this.#opts;
    const out: OutRecord[] = [];
    const result$ = emptyOutput();
    const started = performance.now();
    const wallNow = this.#opts.clock === "event" ? Infinity : Date.now();
    this.#countConsumed(records);
    let part: number | null | undefined = undefined;
    let state: PartitionState = undefined as unknown as PartitionState;
    for (const record of records) {
      if (record.partition !== part) {
        part = record.partition;
        state = this.partition(part);
      }
      this.counters.events++;
      // Every stage fails per record: whatever throws, the record goes to the DLQ and the batch goes on.
      let stage: DlqStage = "decode";
      try {
        // A value its source cut short is refused whole, whatever its beginning says.
        const result = record.size === undefined
          ? decodeEvent(record.value, record.key, this.#opts.decode)
          : tooLarge(record.size, this.#opts.decode);
        if (!result.ok) {
          this.#reject(record, result.stage, result.reason, result.error, out);
          continue;
        }
        const decoded = result.value;
        const event = decoded.event;
        if (state.dedupe.seen(event.event_id)) {
          this.counters.duplicates++;
          continue;
        }
        stage = "rule";
        this.stats.update(event, decoded.time);
        observer?.onEvent?.(decoded, record);
        state.engine.onEvent(event, decoded.time, result$, wallNow);
        stage = "alert";
        if (
          result$.alerts.length + result$.aggregates.length + result$.errors.length > 0 &&
          !this.#drain(result$, out, record)
        ) {
          this.counters.dead_lettered++;
          continue;
        }
        this.counters.accepted++;
      } catch (err) {
        result$.alerts.length = 0;
        result$.aggregates.length = 0;
        result$.errors.length = 0;
        if (err instanceof SensorLimitError) {
          this.#reject(record, "rule", "sensor_limit", err.message, out);
          continue;
        }
        const message = err instanceof Error ? err.message : String(err);
        this.#reject(record, stage, "internal_error", `Processing failed: ${message}`, out);
      }
    }
    this.counters.late_events = this.#sum("lateEvents");
    this.counters.sensors_forgotten = this.#sum("sensorsForgotten");
    this.counters.sequence_dropped = {
      cap: this.#sum("sequenceDropped"),
      timeout: this.#sum("sequenceExpired"),
    };
    observer?.onBatch?.(records.length, (performance.now() - started) / 1000);
    return out;
  }

  #countConsumed(records: readonly InputRecord[]): void {
    // A batch comes from one partition, so this is one map update per batch, not per record (and no
    // key is built per record: only where the topic or partition changes).
    let topic: string | undefined;
    let partition: number | null | undefined;
    let n = 0;
    const flush = () => {
      if (n === 0) return;
      const key = `${topic}\u0000${partition ?? "none"}`;
      this.counters.consumed.set(key, (this.counters.consumed.get(key) ?? 0) + n);
    };
    for (const r of records) {
      if (r.topic !== topic || r.partition !== partition) {
        flush();
        topic = r.topic;
        partition = r.partition;
        n = 0;
      }
      n++;
    }
    flush();
  }

  /** Dead-letters a record that failed at `stage`: one DLQ record, counted once. */
  #reject(record: InputRecord, stage: DlqStage, reason: string, error: string, out: OutRecord[]): void {
    this.counters.dead_lettered++;
    this.#countInvalid(stage, reason);
    out.push(this.#deadLetter({ ...this.#origin(record), stage, error }));
    this.#notifyDeadLetter(stage, error, record);
  }

  #notifyDeadLetter(stage: string, error: string, record: InputRecord): void {
    try {
      this.#opts.observer?.onDeadLetter?.(stage, error, record);
    } catch (err) {
      this.#opts.logger.error("Dead-letter observer failed", { error: err });
    }
  }

  #countInvalid(stage: string, reason: string): void {
    const key = `${stage}\u0000${reason}`;
    this.counters.invalid.set(key, (this.counters.invalid.get(key) ?? 0) + 1);
  }

  /** Advances the engine clocks (windows close, silent sensors are noticed); returns what to publish. */
  tick(wallNow = Date.now(), partition?: number | null): OutRecord[] {
    this.#currentRules();
    if (this.#opts.clock === "event") return [];
    const result = emptyOutput();
    const out: OutRecord[] = [];
    for (const [p, state] of this.#partitions) {
      if (partition !== undefined && p !== partition) continue;
      state.engine.tick(result, wallNow);
      this.#drain(result, out, null);
    }
    return out;
  }

  /** The end of the input (replay): closes the last open windows of every partition. */
  flush(): OutRecord[] {
    this.#currentRules();
    const result = emptyOutput();
    const out: OutRecord[] = [];
    for (const state of this.#partitions.values()) {
      state.engine.flush(result);
      this.#drain(result, out, null);
    }
    return out;
  }

  #sum(key: EngineCount): number {
    let n = this.#retired[key];
    for (const s of this.#partitions.values()) n += s.engine[key];
    return n;
  }

  /** The open alerts of every partition, for the API. */
  get tracker(): Pick<RuleEngine["tracker"], "active" | "acknowledge" | "size" | "flapping"> {
    const engines = () => [...this.#partitions.values()].map((s) => s.engine);
    return {
      active: () => engines().flatMap((e) => e.tracker.active()),
      flapping: () => engines().flatMap((e) => e.tracker.flapping()),
      acknowledge: (alertId: string, by?: string) => {
        for (const e of engines()) {
          const alert = e.acknowledge(alertId, by);
          if (alert !== null) return alert;
        }
        return null;
      },
      get size() {
        return engines().reduce((n, e) => n + e.tracker.size, 0);
      },
    };
  }

  /**
   * Turns the engine's output into records; false when something of it was dead-lettered instead
   * (a rule failed, or an alert or aggregate cannot be serialised). Without a record (a clock tick)
   * such a failure is logged: there is no input to dead-letter.
   */
  #drain(result: EngineOutput, out: OutRecord[], record: InputRecord | null): boolean {
    const { topics, observer } = this.#opts;
    let ok = true;
    const fail = (stage: DlqStage, reason: string, error: string, ruleId: string) => {
      ok = false;
      if (record === null) {
        this.#opts.logger.error(error, { rule: ruleId });
        return;
      }
      out.push(this.#deadLetter({ ...this.#origin(record), stage, error, extra: { rule_id: ruleId } }));
      this.#countInvalid(stage, reason);
      this.#notifyDeadLetter(stage, error, record);
    };
    for (const { rule, error: err } of result.errors) {
      const error = `Rule "${rule.rule.id}" (${rule.source.file}:${rule.source.line}) failed: ${err.message}`;
      fail("rule", err instanceof WindowGroupLimitError ? "group_limit" : "rule_error", error, rule.rule.id);
    }
    for (const raised of result.alerts) {
      const alert = record?.replayed ? { ...raised, replayed: true } : raised;
      const value = _serialise(alert);
      if (typeof value !== "string") {
        fail(
          "alert",
          value.reason,
          `Cannot serialise the alert of rule "${alert.rule_id}": ${value.error}`,
          alert.rule_id,
        );
        continue;
      }
      this.counters.alerts++;
      out.push({ topic: topics.alerts, key: alertKey(alert), value });
      observer?.onAlert?.(alert);
    }
    if (topics.aggregates !== undefined) {
      for (const agg of result.aggregates) {
        const value = _serialise(agg);
        if (typeof value !== "string") {
          const ruleId = String((agg as { rule_id?: unknown }).rule_id ?? "");
          fail(
            "alert",
            value.reason,
            `Cannot serialise the aggregate of rule "${ruleId}": ${value.error}`,
            ruleId,
          );
          continue;
        }
        this.counters.aggregates++;
        out.push({ topic: topics.aggregates, key: sensorKey(agg), value });
      }
    }
    result.alerts.length = 0;
    result.aggregates.length = 0;
    result.errors.length = 0;
    return ok;
  }

  #currentRules(): RuleSet {
    const next = this.#opts.ruleSet();
    if (next !== this.#ruleSet) {
      let dropped = 0;
      for (const state of this.#partitions.values()) dropped += state.engine.setRules(next).dropped;
      if (this.#ruleSet !== null) {
        this.#opts.logger.info("Rules swapped", { rules: next.rules.length, state_dropped: dropped });
      }
      this.#ruleSet = next;
    }
    return next;
  }

  #origin(record: InputRecord): Omit<DlqInput, "stage" | "error"> {
    return {
      topic: record.topic,
      key: record.key,
      value: record.value,
      partition: record.partition,
      offset: record.offset,
      ...(record.size !== undefined ? { size: record.size } : {}),
    };
  }

  /** The DLQ record of a failure; never throws (without its original value and extras if need be). */
  #deadLetter(input: DlqInput): OutRecord {
    this.counters.dead_letters[input.stage] = (this.counters.dead_letters[input.stage] ?? 0) + 1;
    this.#opts.logger.warn("Dead-lettered a message", {
      stage: input.stage,
      error: input.error,
      partition: input.partition,
      offset: input.offset,
    });
    let dlq: DlqRecord | null = null;
    let value: ReturnType<typeof _serialise>;
    try {
      dlq = buildDlqRecord(input);
      value = _serialise(dlq);
    } catch (err) {
      value = { reason: "unserializable", error: (err as Error)?.message ?? String(err) };
    }
    if (dlq === null || typeof value !== "string") {
      const why = typeof value === "string" ? "" : value.error;
      const error = `${input.error} (the DLQ record left out the original value: ${why})`;
      dlq = buildDlqRecord({ ...input, value: null, error: error.slice(0, 64 * 1024), extra: {} });
      value = JSON.stringify(dlq);
    }
    return { topic: this.#opts.topics.dlq, key: dlq.original_key, value };
  }
}

const _encoder = new TextEncoder();

/** JSON of an alert or aggregate, or why it cannot be published. */
function _serialise(value: unknown): string | { reason: string; error: string } {
  let json: string;
  try {
    json = JSON.stringify(value);
  } catch (err) {
    return { reason: "unserializable", error: (err as Error)?.message ?? String(err) };
  }
  // A UTF-16 code unit is at most 3 bytes of UTF-8: only a long text needs to be measured.
  if (json.length * 3 > MAX_OUTPUT_RECORD_BYTES) {
    const bytes = _encoder.encode(json).byteLength;
    if (bytes > MAX_OUTPUT_RECORD_BYTES) {
      return {
        reason: "too_large",
        error:
          `${bytes} bytes of JSON exceed the limit of ${MAX_OUTPUT_RECORD_BYTES} bytes of a published record`,
      };
    }
  }
  return json;
}
