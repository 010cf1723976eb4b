/**
 * The engine's way for one batch of records: decode → validate → duplicate check → stats → rules →
 * alerts, with every failure turned into a DLQ record. `process` resolves once the batch's alerts and
 * DLQ records are durable, so the source may commit the batch's offsets after it.
 *
 * @module
 */
import { alertKey, type SensorAlert, sensorKey } from "./contract/schemas.ts";
import { DuplicateFilter } from "./decode/dedupe.ts";
import { type DecodedEvent, decodeEvent, type DecodeOptions } from "./decode/decode.ts";
import { buildDlqRecord, type DlqInput } from "./dlq/record.ts";
import type { Logger } from "./log.ts";
import { emptyOutput, type EngineOutput, RuleEngine, type StateEntry } from "./rules/engine.ts";
import type { RuleProblem } from "./rules/load.ts";
import type { RuleSet } from "./rules/ruleset.ts";
import { StatsStore } from "./stats/stats.ts";
import type { Output, OutRecord } from "./transport/output.ts";

/** A message as any source delivers it. */
export interface InputRecord {
  topic: string;
  partition: number | null;
  offset: string | null;
  key: string | null;
  value: Uint8Array | string | null;
}

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
}

export interface PipelineOptions {
  ruleSet: () => RuleSet;
  output: Output;
  topics: Topics;
  logger: Logger;
  decode?: DecodeOptions;
  dedupeCapacity?: number;
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

export interface Counters {
  events: number;
  accepted: number;
  duplicates: number;
  dead_letters: Record<string, number>;
  alerts: number;
  /** AggregatedSensorEvents published. */
  aggregates: number;
  /** Events that arrived after their window closed (left out of the aggregate). */
  late_events: number;
  /** Records read, by `topic\u0000partition` (partition "none" outside Kafka); counted per batch. */
  consumed: Map<string, number>;
  /** Refused events by `stage\u0000reason`. */
  invalid: Map<string, number>;
}

export class Pipeline {
  readonly stats = new StatsStore();
  readonly #partitions = new Map<number | null, PartitionState>();
  readonly #idsSavedAt = new Map<number | null, number>();
  readonly counters: Counters = {
    events: 0,
    accepted: 0,
    duplicates: 0,
    dead_letters: {},
    alerts: 0,
    aggregates: 0,
    late_events: 0,
    consumed: new Map(),
    invalid: new Map(),
  };
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
      const engine = new RuleEngine();
      if (this.#opts.checkpoint) engine.trackChanges();
      if (this.#ruleSet !== null) engine.setRules(this.#ruleSet);
      state = { engine, dedupe: new DuplicateFilter(this.#opts.dedupeCapacity) };
      this.#partitions.set(p, state);
    }
    return state;
  }

  /** Partitions with state in memory. */
  partitions(): (number | null)[] {
    return [...this.#partitions.keys()];
  }

  /** Forgets a partition's state (revoked in a rebalance, or its last batch failed to commit). */
  dropPartition(p: number | null): void {
    this.#partitions.delete(p);
  }

  /** Rebuilds a partition's state from its changelog entries (newest last). */
  restorePartition(p: number, entries: Iterable<StateEntry>, recentIds: Iterable<string>): number {
    this.#currentRules();
    this.#partitions.delete(p);
    const state = this.partition(p);
    for (const id of recentIds) state.dedupe.seen(id);
    state.dedupe.duplicates = 0;
    const applied = state.engine.importState(entries);
    state.engine.takeChanges();
    return applied;
  }

  /** What changed in a partition since its last checkpoint, and its newest event ids. */
  checkpoint(p: number | null, now = Date.now()): { entries: StateEntry[]; recentIds: string[] | null } {
    const state = this.#partitions.get(p);
    if (state === undefined) return { entries: [], recentIds: null };
    // The recent ids guard against a producer's retries across a restart; once a second is enough
    // for that, and saves ~10 kB per batch.
    let recentIds: string[] | null = null;
    if (now - (this.#idsSavedAt.get(p) ?? 0) >= 1000) {
      this.#idsSavedAt.set(p, now);
      recentIds = state.dedupe.recent(CHECKPOINT_RECENT_IDS);
    }
    return { entries: state.engine.takeChanges(), recentIds };
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
      const result = decodeEvent(record.value, record.key, this.#opts.decode);
      if (!result.ok) {
        this.#countInvalid(result.stage, result.reason);
        out.push(this.#deadLetter({ ...this.#origin(record), stage: result.stage, error: result.error }));
        observer?.onDeadLetter?.(result.stage, result.error, record);
        continue;
      }
      const decoded = result.value;
      const event = decoded.event;
      if (state.dedupe.seen(event.event_id)) {
        this.counters.duplicates++;
        continue;
      }
      this.counters.accepted++;
      this.stats.update(event, decoded.time);
      observer?.onEvent?.(decoded, record);
      state.engine.onEvent(event, decoded.time, result$, wallNow);
      if (result$.alerts.length + result$.aggregates.length + result$.errors.length > 0) {
        this.#drain(result$, out, record);
      }
    }
    this.counters.late_events = this.#sum((e) => e.lateEvents);
    observer?.onBatch?.(records.length, (performance.now() - started) / 1000);
    return out;
  }

  #countConsumed(records: readonly InputRecord[]): void {
    // A batch comes from one partition, so this is one map update per batch, not per record.
    let key = "";
    let n = 0;
    const flush = () => {
      if (n > 0) this.counters.consumed.set(key, (this.counters.consumed.get(key) ?? 0) + n);
    };
    for (const r of records) {
      const k = `${r.topic}\u0000${r.partition ?? "none"}`;
      if (k !== key) {
        flush();
        key = k;
        n = 0;
      }
      n++;
    }
    flush();
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

  #sum(f: (e: RuleEngine) => number): number {
    let n = 0;
    for (const s of this.#partitions.values()) n += f(s.engine);
    return n;
  }

  /** The open alerts of every partition, for the API. */
  get tracker(): Pick<RuleEngine["tracker"], "active" | "acknowledge" | "size"> {
    const engines = () => [...this.#partitions.values()].map((s) => s.engine);
    return {
      active: () => engines().flatMap((e) => e.tracker.active()),
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

  #drain(result: EngineOutput, out: OutRecord[], record: InputRecord | null): void {
    const { topics, observer } = this.#opts;
    for (const { rule, error: err } of result.errors) {
      const error = `Rule "${rule.rule.id}" (${rule.source.file}:${rule.source.line}) failed: ${err.message}`;
      if (record !== null) {
        out.push(
          this.#deadLetter({
            ...this.#origin(record),
            stage: "rule",
            error,
            extra: { rule_id: rule.rule.id },
          }),
        );
        this.#countInvalid("rule", "rule_error");
        observer?.onDeadLetter?.("rule", error, record);
      } else {
        this.#opts.logger.error(error, { rule: rule.rule.id });
      }
    }
    for (const alert of result.alerts) {
      this.counters.alerts++;
      out.push({ topic: topics.alerts, key: alertKey(alert), value: JSON.stringify(alert) });
      observer?.onAlert?.(alert);
    }
    if (topics.aggregates !== undefined) {
      for (const agg of result.aggregates) {
        this.counters.aggregates++;
        out.push({ topic: topics.aggregates, key: sensorKey(agg), value: JSON.stringify(agg) });
      }
    }
    result.alerts.length = 0;
    result.aggregates.length = 0;
    result.errors.length = 0;
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
    };
  }

  #deadLetter(input: DlqInput): OutRecord {
    this.counters.dead_letters[input.stage] = (this.counters.dead_letters[input.stage] ?? 0) + 1;
    this.#opts.logger.warn("Dead-lettered a message", {
      stage: input.stage,
      error: input.error,
      partition: input.partition,
      offset: input.offset,
    });
    return { topic: this.#opts.topics.dlq, key: input.key, value: JSON.stringify(buildDlqRecord(input)) };
  }
}
