/**
 * `WORKERS` engine workers in one process, as Kafka Streams runs `num.stream.threads`: each worker is
 * a worker thread running the engine stage (src/engine/) as a member of the engine's consumer group,
 * with its partitions, its state and its transactional producers (one per partition it owns, named
 * by the partition, so a restarted worker fences its predecessor's open transaction). The main thread keeps HTTP, metrics
 * and the dashboard, and sees the workers as one engine through their snapshots (`WorkersView`).
 * A worker that dies is started again; its partitions recover from the changelog.
 *
 * The workers are `node:worker_threads` workers rather than Web Workers for one reason: their
 * `resourceLimits` give each its own heap limit (`WORKER_HEAP_MIB`), and one that reaches it ends
 * alone with ERR_WORKER_OUT_OF_MEMORY (then restarted like any crash). A Web Worker has no limit of
 * its own: `--max-old-space-size` applies to every isolate, and the one that reaches it aborts the
 * whole process. The worker's side is the same global scope either way (src/workers/engine_worker.ts).
 *
 * @module
 */
import { Worker } from "node:worker_threads";
import type { Config } from "../config.ts";
import type { SensorAlert } from "../contract/schemas.ts";
import type { EngineWorkers, RunningEngine } from "../engine/types.ts";
import type { Logger } from "../log.ts";
import type { PipelineObserver } from "../pipeline.ts";
import { Backoff } from "../transport/backoff.ts";
import type { FromWorker, ToWorker } from "./protocol.ts";
import { WorkersView } from "./view.ts";

interface Slot {
  index: number;
  worker: Worker | null;
  /** Started and not yet told to stop. */
  running: boolean;
  /** Started once: from then on, a worker that dies is replaced. */
  everStarted: boolean;
  /** Set up and waiting to join the group. */
  ready: boolean;
  /** Refreshes waiting for the worker's answer, by request id. */
  snapshots: Map<number, () => void>;
  /** Acknowledgements waiting for the worker's answer, by request id. */
  acks: Map<number, (alert: SensorAlert | null, error: string | null) => void>;
  /** Called when the worker answered `started` (null) or failed to (why). */
  onStarted: ((error: string | null) => void) | null;
  onStopped: (() => void) | null;
  backoff: Backoff;
}

/** The engine stage in `config.workers` threads. */
export const engineWorkers: EngineWorkers = ({ config, logger, observer, signal }) =>
  new WorkerPool(config, logger, observer, signal).engine;

/** How long the API waits for a worker's fresh snapshot before it reads the last one. */
const REFRESH_TIMEOUT_MS = 2000;

class WorkerPool {
  readonly #config: Config;
  readonly #logger: Logger;
  readonly #observer: PipelineObserver | undefined;
  readonly #signal: AbortSignal | undefined;
  readonly #view: WorkersView;
  readonly #slots: Slot[];
  #stopping = false;
  /** The first start: the workers join the group together. */
  #starting = false;
  /** What the workers were last told about sensor stats (see the `sensors` message). */
  #sensorsWanted = false;
  #nextRequest = 0;

  constructor(
    config: Config,
    logger: Logger,
    observer: PipelineObserver | undefined,
    signal: AbortSignal | undefined,
  ) {
    this.#config = config;
    this.#signal = signal;
    this.#logger = logger;
    this.#observer = observer;
    this.#view = new WorkersView(config.workers);
    this.#slots = Array.from({ length: config.workers }, (_, index) => ({
      index,
      worker: null,
      running: false,
      everStarted: false,
      ready: false,
      snapshots: new Map(),
      acks: new Map(),
      onStarted: null,
      onStopped: null,
      backoff: new Backoff({ initialMs: 1000, maxMs: 30_000 }),
    }));
  }

  get engine(): RunningEngine {
    return {
      pipeline: this.#view,
      source: this.#view.source(
        this.#config.groups.engine,
        this.#config.topics.events,
        () => this.#slots.every((s) => s.running),
      ),
      acknowledge: (id, by) => this.#acknowledge(id, by),
      refresh: (want) => this.#refresh(want?.sensors ?? true),
      // Each worker runs its own clock.
      flush: () => Promise.resolve(),
      start: () => this.#start(),
      stop: () => this.#stop(),
    };
  }

  /**
   * One worker's settings: the engine alone in its thread. Its transactional producers are named by
   * the partitions it owns (`<group>-<topic>-<partition>`), so workers need no id of their own.
   */
  #workerConfig(): Config {
    return {
      ...this.#config,
      role: "engine",
      workers: 1,
      workersTestCrash: null,
      // The worker serves no HTTP: the API token stays in the main thread.
      http: { ...this.#config.http, token: null },
    };
  }

  async #start(): Promise<void> {
    const crash = this.#config.workersTestCrash;
    this.#starting = true;
    try {
      // The first failure is the answer: the others may wait at the join barrier for it for ever.
      const started = Promise.all(
        this.#slots.map((slot) => this.#spawn(slot, crash?.worker === slot.index ? crash : null)),
      );
      // A shutdown during start-up ends the workers (each may still wait for its broker).
      const signal = this.#signal;
      await (signal === undefined ? started : Promise.race([
        started,
        new Promise<never>((_, reject) => {
          signal.throwIfAborted();
          signal.addEventListener("abort", () => reject(signal.reason), { once: true });
        }),
      ]));
    } catch (err) {
      await this.#stop();
      throw err;
    } finally {
      this.#starting = false;
    }
    // Each worker started once it joined the group, so the group's rebalances for their joins are
    // over: handling batches before could hand a partition to a later worker with batches processed
    // and not yet committed, which it processed again. A broker holds a new group's first rebalance
    // 3 s for more members, but `group.initial.rebalance.delay.ms=0` does not: the first worker took
    // the topic alone, and the second's join moved a partition mid-stream (109 alerts repeated of
    // 3,000 at-least-once records in one CI run of tests/integration/reliability/hostile_test.ts).
    for (const slot of this.#slots) this.#post(slot, { type: "process" });
    this.#logger.info("Engine workers started", { workers: this.#slots.length });
  }

  /** Starts the slot's worker; resolves once its engine has started, rejects with why it did not. */
  #spawn(slot: Slot, crashAfter: { events: number; heap: boolean } | null): Promise<void> {
    const worker = new Worker(new URL("./engine_worker.ts", import.meta.url), {
      name: `engine-worker-${slot.index}`,
      resourceLimits: { maxOldGenerationSizeMb: this.#config.workerHeapMib },
    });
    slot.worker = worker;
    slot.ready = false;
    const started = new Promise<void>((resolve, reject) => {
      slot.onStarted = (error) => {
        slot.onStarted = null;
        if (error === null) resolve();
        else reject(new Error(`Engine worker ${slot.index} did not start: ${error}`));
      };
    });
    worker.on("message", (msg: FromWorker) => {
      if (slot.worker === worker) this.#receive(slot, msg);
    });
    // An error the worker did not catch itself: out of heap (ERR_WORKER_OUT_OF_MEMORY) is the one
    // its own handlers cannot see. Listened to, it does not end the process.
    worker.on("error", (err: Error) => {
      if (slot.worker === worker) this.#died(slot, describeExit(err, this.#config.workerHeapMib));
    });
    worker.on("exit", (code: number) => {
      if (slot.worker === worker) this.#died(slot, `Engine worker ${slot.index} exited with code ${code}`);
    });
    const msg: ToWorker = {
      type: "start",
      config: this.#workerConfig(),
      index: slot.index,
      crashAfter,
      hold: this.#starting,
    };
    worker.postMessage(msg);
    return started;
  }

  #receive(slot: Slot, msg: FromWorker): void {
    switch (msg.type) {
      case "ready":
        slot.ready = true;
        // Each joins at once after a restart; at the first start, once all are set up (the broker
        // holds a new group's first rebalance 3 s for more members; set-up alone can take longer).
        if (!this.#starting) this.#post(slot, { type: "go" });
        else if (this.#slots.every((s) => s.ready)) {
          for (const s of this.#slots) this.#post(s, { type: "go" });
        }
        return;
      case "started":
        slot.running = !this.#stopping;
        slot.everStarted = true;
        this.#post(slot, { type: "sensors", wanted: this.#sensorsWanted });
        slot.onStarted?.(null);
        return;
      case "failed":
        slot.onStarted?.(msg.message);
        // A replacement that cannot start (the broker away) is tried again, like one that died.
        if (slot.everStarted) this.#died(slot, msg.message);
        return;
      case "snapshot": {
        const s = msg.snapshot;
        const ids = this.#view.update(slot.index, s);
        if (s.source.joined) slot.backoff.reset();
        const o = this.#observer;
        for (const alert of s.alerts) o?.onAlert?.(alert);
        for (const [records, seconds] of s.batches) o?.onBatch?.(records, seconds);
        if (ids.length > 0) o?.onSensors?.(ids);
        if (msg.request !== null) slot.snapshots.get(msg.request)?.();
        const wanted = this.#observer?.wantsSensors?.() ?? false;
        if (wanted !== this.#sensorsWanted) {
          this.#sensorsWanted = wanted;
          for (const s of this.#slots) this.#post(s, { type: "sensors", wanted });
        }
        return;
      }
      case "acked":
        slot.acks.get(msg.id)?.(msg.alert, msg.error);
        slot.acks.delete(msg.id);
        return;
      case "stopped":
        slot.onStopped?.();
        return;
      case "crashed":
        this.#died(slot, msg.message, msg.stack);
        return;
    }
  }

  /** A worker ended by an uncaught error: its partitions go back to the group, a new one takes its place. */
  #died(slot: Slot, error: string, stack: string | null = null): void {
    // Forgotten before it is ended: its "exit" event (fired by terminate) must not count as a second death.
    const worker = slot.worker;
    slot.worker = null;
    worker?.terminate().catch(() => {});
    slot.running = false;
    this.#view.retire(slot.index);
    for (const answer of slot.acks.values()) answer(null, null);
    slot.acks.clear();
    for (const done of slot.snapshots.values()) done();
    slot.onStarted?.(error);
    if (this.#stopping) {
      slot.onStopped?.();
      return;
    }
    // The first start failed: `#start` says so and the service does not start.
    if (!slot.everStarted) return;
    // One line at error level; where it came from for whoever turns on debug.
    if (stack !== null) this.#logger.debug("Engine worker crash stack", { worker: slot.index, stack });
    const delay = slot.backoff.next();
    this.#logger.error(
      "Engine worker crashed: starting it again, its partitions recover from the changelog",
      {
        worker: slot.index,
        error,
        retry_in_ms: delay,
      },
    );
    setTimeout(() => {
      if (this.#stopping) return;
      this.#spawn(slot, null).then(
        () => this.#logger.info("Engine worker started again", { worker: slot.index }),
        // Its death was reported (and a new start planned) by #died.
        () => {},
      );
    }, delay);
  }

  async #acknowledge(alertId: string, by: string): Promise<SensorAlert | null> {
    // The owner per the last snapshots first; the others in case its sensor moved since.
    const owner = this.#view.owner(alertId);
    const order = [...this.#slots].sort((a, b) => Number(b.index === owner) - Number(a.index === owner));
    for (const slot of order) {
      if (!slot.running || slot.worker === null) continue;
      const id = this.#nextRequest++;
      const answer = new Promise<SensorAlert | null>((resolve, reject) => {
        slot.acks.set(id, (alert, error) => error === null ? resolve(alert) : reject(new Error(error)));
      });
      this.#post(slot, { type: "ack", id, alertId, by });
      const alert = await answer;
      if (alert !== null) {
        this.#view.acknowledged(slot.index, alert);
        return alert;
      }
    }
    return null;
  }

  /**
   * Waits for a snapshot of every running worker taken after this call: what they committed before
   * it is in the view. A worker that does not answer within `REFRESH_TIMEOUT_MS` is read as it was.
   */
  async #refresh(sensors: boolean): Promise<void> {
    await Promise.all(
      this.#slots.filter((s) => s.running).map((slot) =>
        new Promise<void>((resolve) => {
          const id = this.#nextRequest++;
          const done = () => {
            clearTimeout(timer);
            slot.snapshots.delete(id);
            resolve();
          };
          const timer = setTimeout(done, REFRESH_TIMEOUT_MS);
          slot.snapshots.set(id, done);
          this.#post(slot, { type: "snapshot", id, sensors });
        })
      ),
    );
  }

  #post(slot: Slot, msg: ToWorker): void {
    slot.worker?.postMessage(msg);
  }

  /** Every worker finishes its in-flight work (its last transaction) and leaves the group. */
  async #stop(): Promise<void> {
    this.#stopping = true;
    await Promise.all(this.#slots.map(async (slot) => {
      const worker = slot.worker;
      if (worker === null) return;
      if (!slot.running) {
        // Not consuming yet (or never will: its start failed): nothing to drain.
        slot.worker = null;
        await worker.terminate();
        return;
      }
      slot.running = false;
      await new Promise<void>((resolve) => {
        slot.onStopped = resolve;
        const msg: ToWorker = { type: "stop" };
        worker.postMessage(msg);
      });
      slot.worker = null;
      await worker.terminate();
    }));
  }
}

/** Why a worker ended, said for the log; a heap limit names the setting that sets it. */
function describeExit(err: Error, heapMib: number): string {
  if ((err as { code?: string }).code === "ERR_WORKER_OUT_OF_MEMORY") {
    return `Out of heap: the worker reached WORKER_HEAP_MIB "${heapMib}"`;
  }
  return err.message;
}
