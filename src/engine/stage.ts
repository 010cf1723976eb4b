/**
 * The engine stage with Kafka: the events topic through the Pipeline to the output, under one of the
 * two processing guarantees. A guarantee is a strategy (its output, what happens per batch, its
 * flush); this module builds what both share, the Pipeline and the consumer, around it.
 *
 * @module
 */
import type { Kafka } from "kafkajs";
import { DEFAULT_DEDUPE_CAPACITY } from "../decode/dedupe.ts";
import type { Logger } from "../log.ts";
import { Pipeline, type PipelineOptions } from "../pipeline.ts";
import { type ConsumerOptions, KafkaSource } from "../source/kafka.ts";
import { exactlyOnceEngine } from "../state/exactly_once.ts";
import type { Output, ShrinkRecord } from "../transport/output.ts";
import { atLeastOnceEngine } from "./at_least_once.ts";
import type { EngineStage, PipelineParts, SourceParts } from "./types.ts";

export type { EngineStage } from "./types.ts";

export type Guarantee = "at_least_once" | "exactly_once";

export interface KafkaEngineOptions {
  guarantee: Guarantee;
  kafka: Kafka;
  logger: Logger;
  /**
   * The process's output: at-least-once writes through it, exactly-once only what no partition's
   * transaction carries (acknowledgements).
   */
  output: Output;
  groupId: string;
  eventsTopic: string;
  /** The state changelog (exactly-once). */
  stateTopic: string;
  /** `--accept-empty-state` (exactly-once): a changelog created again is taken as empty state. */
  acceptEmptyState?: boolean;
  /** What stands for a record the broker refuses on its own for its size (see `ShrinkRecord`). */
  shrink?: ShrinkRecord;
  /** Partitions of the events topic: a checkpointing engine keeps one duplicate filter per partition. */
  eventPartitions: number;
  /** The Pipeline's settings, besides what the guarantee decides. */
  pipeline: Omit<PipelineOptions, keyof PipelineParts>;
  consumer: Pick<ConsumerOptions, "sessionTimeoutMs" | "maxBytesPerPartition" | "onGap" | "processAfter">;
}

/** The engine stage of `opts.guarantee`. */
export function kafkaEngineStage(opts: KafkaEngineOptions): EngineStage {
  const { kafka, logger } = opts;
  // One filter per partition when checkpointing: together they remember as many ids as the single
  // one of at-least-once (six filters of 100,000 ids each held ~50 MB more).
  const dedupeCapacity = Math.max(10_000, Math.ceil(DEFAULT_DEDUPE_CAPACITY / opts.eventPartitions));
  const pipeline = (parts: PipelineParts) =>
    new Pipeline({ ...opts.pipeline, ...parts, ...(parts.checkpoint ? { dedupeCapacity } : {}) });
  const source = (parts: SourceParts) =>
    new KafkaSource({
      kafka,
      groupId: opts.groupId,
      topic: opts.eventsTopic,
      logger: logger.child({ stage: "engine" }),
      ...opts.consumer,
      ...parts,
    });
  return GUARANTEES[opts.guarantee]({ ...opts, pipeline, source });
}

/** What a guarantee's strategy is given: the stage's settings, and builders of its Pipeline and consumer. */
type StrategyOptions = Omit<KafkaEngineOptions, "pipeline" | "consumer"> & {
  pipeline: (parts: PipelineParts) => Pipeline;
  source: (parts: SourceParts) => KafkaSource;
};

const GUARANTEES: Record<Guarantee, (opts: StrategyOptions) => EngineStage> = {
  at_least_once: atLeastOnceEngine,
  exactly_once: exactlyOnceEngine,
};
