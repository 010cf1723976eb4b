/**
 * What the engine stage's guarantees have in common: the stage they make, and what each adds to the
 * Pipeline and the consumer that the stage builds around it.
 *
 * @module
 */
import type { Episode } from "../alerts/lifecycle.ts";
import type { Config } from "../config.ts";
import type { SensorAlert } from "../contract/schemas.ts";
import type { Logger } from "../log.ts";
import type { Pipeline, PipelineObserver, PipelineOptions } from "../pipeline.ts";
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
  /** Resolves once no partition's state is being restored (a newly assigned one's, under exactly-once). */
  restored?(): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** What a guarantee adds to the Pipeline the stage builds: where it writes, and whether it checkpoints. */
export type PipelineParts = Pick<PipelineOptions, "output" | "checkpoint">;
/** What a guarantee adds to the consumer the stage builds: what it does per batch. */
export type SourceParts = Pick<ConsumerOptions, "handle" | "autoCommit" | "onAssign" | "onRecreated">;

/**
 * What the operator's view (API, metrics, dashboard) reads of the engine: a Pipeline in this thread,
 * or the sum of the engine workers' snapshots (src/workers/).
 */
export interface EngineView {
  readonly counters: Pipeline["counters"];
  readonly stats: Pick<Pipeline["stats"], "all" | "get" | "size" | "unordered">;
  readonly tracker: {
    /** The open episodes (pending ones left out), as far as the view reads them. */
    active(): OpenEpisode[];
    /** Rule × group pairs whose notifications flap detection holds back now. */
    flapping(): { rule_id: string; group: string }[];
    readonly size: number;
  };
  /** Each engine worker's heap as it last said (engine workers only). */
  workerMemory?(): WorkerMemory[];
}

/**
 * What a refresh must bring up to date besides counters: `sensors: false` for a reader of counters
 * only (/metrics), which then costs the workers no sensor stats and the main thread no copy of them.
 */
export interface RefreshWant {
  sensors: boolean;
}

/** One engine worker's isolate, from its `Deno.memoryUsage()` (rss is the process's, left out). */
export interface WorkerMemory {
  worker: number;
  heapUsed: number;
  heapTotal: number;
  /** ArrayBuffers and other memory V8 does not own (kafkajs's fetched Buffers among them). */
  external: number;
}

/** What the operator's view reads of an open episode. */
export type OpenEpisode = Pick<Episode, "alert_id" | "rule_id" | "acknowledged" | "alert">;

/** What readiness, lag and metrics read of a consumer: one KafkaSource, or the workers' together. */
export type SourceView = Pick<
  KafkaSource,
  "groupId" | "topic" | "joined" | "problem" | "deletedUnread" | "recreations" | "held"
>;

/** The engine stage wherever it runs, as the composition root drives it and the operator sees it. */
export interface RunningEngine {
  pipeline: EngineView;
  source: SourceView;
  /** Acknowledges an open alert where its episode lives and publishes it; null when none is open. */
  acknowledge(alertId: string, by: string): Promise<SensorAlert | null>;
  /** Brings `pipeline` up to date when it is a copy of state held elsewhere (engine workers). */
  refresh?: (want?: RefreshWant) => Promise<void>;
  flush(): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** Runs the engine stage in `config.workers` threads (src/workers/); main.ts hands it to the service. */
export type EngineWorkers = (opts: {
  config: Config;
  logger: Logger;
  observer: PipelineObserver | undefined;
  /** A shutdown during start-up: starting gives up (the workers are ended). */
  signal: AbortSignal | undefined;
}) => RunningEngine;
