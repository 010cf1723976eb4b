/**
 * A what-if's events straight from the events topic, the way `deno task backtest --from` reads it
 * (kafka.ts): offsets by record time, a throwaway group that never commits and is deleted after. With
 * Kafka the service's own memory cannot stand for the history: its engine runs in worker threads, and
 * each instance owns only some partitions; the topic holds every partition, whoever owns it.
 *
 * @module
 */
import type { Kafka } from "kafkajs";
import type { Logger } from "../log.ts";
import { readRange } from "./kafka.ts";
import type { HistoryRead, WhatIfHistory } from "./whatif.ts";

/**
 * The bounds when not given: a window of a day at most, and 100,000 records, the newest of each
 * partition. Measured on the shared 2-core machine (load 5), one threshold rule over the simulator's
 * events of 1,006 sensors from a 3-partition topic, a throwaway process per run: 100,000 records took
 * 0.9-1.8 s with the heap peaking at ~61 MB; 200,000 took 1.7-3.4 s and ~130 MB. Nothing is kept after.
 */
export const topicHistoryDefaults = { maxWindowMs: 86_400_000, maxEvents: 100_000 };

export interface TopicHistoryOptions {
  kafka: Kafka;
  topic: string;
  logger: Logger;
  /** The service's future-skew check, applied to what is read as the engine applies it. */
  maxFutureSkewMs?: number;
  maxWindowMs?: number;
  maxEvents?: number;
}

export class TopicHistory implements WhatIfHistory {
  readonly source = "topic";
  readonly label: string;
  readonly maxWindowMs: number;
  readonly maxEvents: number;
  readonly #opts: TopicHistoryOptions;

  constructor(opts: TopicHistoryOptions) {
    this.#opts = opts;
    this.label = `topic "${opts.topic}"`;
    this.maxWindowMs = opts.maxWindowMs ?? topicHistoryDefaults.maxWindowMs;
    this.maxEvents = opts.maxEvents ?? topicHistoryDefaults.maxEvents;
  }

  /** The records of the last `windowMs` by record time, up to the partitions' ends now. */
  async read(windowMs: number): Promise<HistoryRead> {
    const { kafka, topic, logger, maxFutureSkewMs } = this.#opts;
    const reader = await readRange({
      kafka,
      topic,
      from: Date.now() - Math.min(windowMs, this.maxWindowMs),
      to: null,
      logger,
      groupId: `whatif-${crypto.randomUUID()}`,
      maxRecords: this.maxEvents,
    });
    return {
      batches: reader.batches,
      capped: reader.capped,
      decode: { requireKey: false, ...(maxFutureSkewMs !== undefined ? { maxFutureSkewMs } : {}) },
      close: reader.close,
    };
  }
}
