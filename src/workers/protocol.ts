/**
 * The messages between the main thread and an engine worker. Everything crosses by structured
 * clone: plain data only (a class instance arrives without its prototype, a getter not at all).
 *
 * @module
 */
import type { Config } from "../config.ts";
import type { SensorAlert } from "../contract/schemas.ts";
import type { OpenEpisode, WorkerMemory } from "../engine/types.ts";
import type { Counters } from "../pipeline.ts";
import type { SensorColumns } from "./sensors.ts";

/** What a worker tells the main thread every `SNAPSHOT_MS`, and once more when it stops. */
export interface WorkerSnapshot {
  counters: Counters;
  /**
   * Its open episodes with an alert that changed since they were last sent (the first time: all),
   * and those that closed; every `DETAIL_EVERY` snapshots, null in between.
   */
  episodes: { changed: OpenEpisode[]; closed: string[] } | null;
  /** Its episodes, pending ones included. */
  episodeCount: number;
  /**
   * Stats of the sensors updated since they were last sent (the first time: every sensor); every
   * `DETAIL_EVERY` snapshots while the main thread wants them, and in every requested one; else null.
   */
  sensors: SensorColumns | null;
  /** Alerts raised since the last snapshot, oldest first. */
  alerts: SensorAlert[];
  /** Each batch since the last snapshot: its records and the seconds it took. */
  batches: [number, number][];
  /** Its isolate's heap (`Deno.memoryUsage()` without the process's rss). */
  memory: Omit<WorkerMemory, "worker">;
  /** Its member of the engine's consumer group. */
  source: {
    joined: boolean;
    problem: string | null;
    deletedUnread: Map<number, number>;
    recreations: number;
    /** Partitions it holds back, with why. */
    held: Map<number, string>;
  };
}

/** Half the live feed's flush interval: the dashboard is at most one feed flush behind a worker. */
export const SNAPSHOT_MS = 250;
/**
 * Sensor stats and open episodes go with every 4th snapshot (once a second), and what changed only:
 * 10,000 sensors that all changed cost the worker 6-15 ms to send, and sending every open episode
 * four times a second starved a worker with 100,000 of them (the reliability suite's stream: it fell
 * minutes behind).
 */
export const DETAIL_EVERY = 4;

export type ToWorker =
  | {
    type: "start";
    /** The worker's settings: one engine in its thread, its own instance id. */
    config: Config;
    index: number;
    /** Tests only: throw an uncaught error once this many events are processed. */
    crashAfter: { events: number; heap: boolean } | null;
    /** Handle no batch before `process` (the first start: until every worker is in the group). */
    hold: boolean;
  }
  /** Join the group now (the workers starting together are all set up: one rebalance, not one each). */
  | { type: "go" }
  /** Every worker of the first start is in the group: handle batches. */
  | { type: "process" }
  /**
   * A snapshot now, with every sensor that changed unless `sensors` is false (/metrics reads no
   * sensor): the API reads what was committed before it asked.
   */
  | { type: "snapshot"; id: number; sensors: boolean }
  /**
   * Whether periodic snapshots carry sensor stats: only while a dashboard watches (the API asks for a
   * fresh snapshot anyway). Unwatched, decoding them took ~20% of the main thread's CPU (10,000
   * sensors, 40,000 events/s).
   */
  | { type: "sensors"; wanted: boolean }
  | { type: "ack"; id: number; alertId: string; by: string }
  | { type: "stop" };

export type FromWorker =
  /** Set up, waiting for `go` to join the group. */
  | { type: "ready" }
  | { type: "started" }
  | { type: "failed"; message: string }
  /** `request`: the id of the `snapshot` request it answers, null when periodic. */
  | { type: "snapshot"; snapshot: WorkerSnapshot; request: number | null }
  | { type: "acked"; id: number; alert: SensorAlert | null; error: string | null }
  | { type: "stopped" }
  /** An error nothing caught: the worker posts it and closes, the main thread starts another. */
  | { type: "crashed"; message: string; stack: string | null };

/** The side of the message port a module sees: the Worker object, or the worker's global scope. */
export interface Port<In, Out> {
  postMessage(message: Out, transfer?: Transferable[]): void;
  onmessage: ((e: MessageEvent<In>) => void) | null;
}
