/**
 * The backtest's engine: the service's own Pipeline (decode, duplicate check, one rule engine per input
 * partition, the alert lifecycle) in event time, as a replay runs it (`clock: "event"`), with an output
 * that keeps the alerts instead of publishing them. Two rule sets (`--against`) are two Pipelines fed
 * the same records in one pass.
 *
 * @module
 */
import type { InputRecord } from "../contract/records.ts";
import type { SensorAlert } from "../contract/schemas.ts";
import type { DecodeOptions } from "../decode/decode.ts";
import { createLogger, type Logger } from "../log.ts";
import { Pipeline } from "../pipeline.ts";
import type { RuleSet } from "../rules/ruleset.ts";
import { EpisodeLog } from "./episodes.ts";
import { SeriesStore } from "./series.ts";

export interface BacktestOptions {
  /** One rule set, or two for `--against` (A then B). */
  ruleSets: readonly RuleSet[];
  decode?: DecodeOptions;
  /** The Pipeline's log (dead-lettered records are warnings there); default: errors only. */
  logger?: Logger;
  /** Keep each sensor's values for the HTML page (bounded per sensor). */
  series?: boolean;
}

/** What one rule set did over the events. */
export interface SideResult {
  alerts: SensorAlert[];
  episodes: EpisodeLog;
}

const TOPICS = { alerts: "backtest.alerts", dlq: "backtest.dlq" };

/** Sends nothing anywhere: the Pipeline's records are dropped, its alerts were kept by the observer. */
const NO_OUTPUT = { send: () => Promise.resolve(), close: () => Promise.resolve() };

export class Backtest {
  readonly #pipelines: Pipeline[] = [];
  readonly sides: SideResult[] = [];
  readonly series: SeriesStore | null;
  /** Input records read (valid or not). */
  records = 0;
  /** Event time of the first and newest accepted events. */
  firstTime = Infinity;
  lastTime = -Infinity;
  #finished = false;

  constructor(opts: BacktestOptions) {
    const logger = opts.logger ?? createLogger({ level: "error" });
    this.series = opts.series ? new SeriesStore() : null;
    opts.ruleSets.forEach((ruleSet, i) => {
      const side: SideResult = { alerts: [], episodes: new EpisodeLog() };
      this.sides.push(side);
      let partition: number | null = null;
      const pipeline: Pipeline = new Pipeline({
        ruleSet: () => ruleSet,
        output: NO_OUTPUT,
        topics: TOPICS,
        logger,
        clock: "event",
        ...(opts.decode !== undefined ? { decode: opts.decode } : {}),
        observer: {
          onEvent: (e, record) => {
            partition = record.partition;
            // The first side's events stand for both: the same records pass through each.
            if (i > 0) return;
            if (e.time < this.firstTime) this.firstTime = e.time;
            if (e.time > this.lastTime) this.lastTime = e.time;
            this.series?.add(e.event, e.time);
          },
          onAlert: (alert) => {
            side.alerts.push(alert);
            side.episodes.add(alert, this.#since(pipeline, partition, alert));
          },
        },
      });
      this.#pipelines.push(pipeline);
    });
  }

  /** Runs a batch through every rule set; synchronous, as the engine is. */
  process(records: readonly InputRecord[]): void {
    if (this.#finished) throw new Error("The backtest has finished: it takes no more records");
    this.records += records.length;
    for (const p of this.#pipelines) p.evaluate(records);
  }

  /** The end of the input: the last open windows close, as at the end of a replay. */
  finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    for (const p of this.#pipelines) p.flush();
    for (const side of this.sides) side.episodes.close(this.lastTime);
  }

  /** The first side's counters (the records are the same for both). */
  get counters(): Pipeline["counters"] {
    return this.#pipelines[0]!.counters;
  }

  /**
   * When the episode's condition first held: its pending phase's start, which the engine's tracker
   * still holds when the first firing alert comes out (`for` is the difference).
   */
  #since(pipeline: Pipeline, partition: number | null, alert: SensorAlert): number | null {
    if (alert.state !== "firing" || (alert.repeat ?? 0) > 0) return null;
    const group = alert.group ?? alert.sensor_id;
    const ep = pipeline.partition(partition).engine.tracker.episode(alert.rule_id, group);
    return ep !== undefined && ep.alert_id === alert.alert_id ? ep.since : null;
  }
}
