/**
 * What the engine stage's guarantees have in common: the stage they make, and what each adds to the
 * Pipeline and the consumer that the stage builds around it.
 *
 * @module
 */
import type { Pipeline, PipelineOptions } from "../pipeline.ts";
import type { ConsumerOptions, KafkaSource } from "../source/kafka.ts";
import type { Output } from "../transport/output.ts";

/** The engine stage as the composition root runs it, whatever its guarantee. */
export interface EngineStage {
  pipeline: Pipeline;
  /** Where the engine writes: the HTTP API publishes alert acknowledgements through it. */
  output: Output;
  /** The consumer of the events topic. */
  source: KafkaSource;
  /** Publishes clock-driven output (closed windows, deadman alerts); called once a second. */
  flush(): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** What a guarantee adds to the Pipeline the stage builds: where it writes, and whether it checkpoints. */
export type PipelineParts = Pick<PipelineOptions, "output" | "checkpoint">;
/** What a guarantee adds to the consumer the stage builds: what it does per batch. */
export type SourceParts = Pick<ConsumerOptions, "handle" | "autoCommit" | "onAssign">;
