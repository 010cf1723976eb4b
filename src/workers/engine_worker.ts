/**
 * An engine worker's thread: the service in role `engine` (the engine stage under its guarantee,
 * its rules with hot reload, its clock), which reports its state to the main thread every
 * `SNAPSHOT_MS` and acknowledges the alerts the main thread passes on. Spawned by `engineWorkers`.
 *
 * @module
 */
import type { SensorAlert } from "../contract/schemas.ts";
import type { OpenEpisode } from "../engine/types.ts";
import { logger } from "../log.ts";
import type { PipelineObserver } from "../pipeline.ts";
import { type EngineService, startEngineService } from "../service.ts";
import type { SensorStats } from "../stats/stats.ts";
import {
  DETAIL_EVERY,
  type FromWorker,
  type Port,
  SNAPSHOT_MS,
  type ToWorker,
  type WorkerSnapshot,
} from "./protocol.ts";
import { encodeSensors, sensorBuffers } from "./sensors.ts";

const port = globalThis as unknown as Port<ToWorker, FromWorker>;

/**
 * An uncaught error or unhandled rejection ends this worker the way it would end the process, but
 * said in one log line by the main thread (Deno would print its own trace to stderr, outside the log).
 */
function crash(error: unknown): void {
  clearInterval(timer);
  const e = error instanceof Error ? error : new Error(String(error));
  port.postMessage({ type: "crashed", message: e.message, stack: e.stack ?? null });
  (globalThis as unknown as { close(): void }).close();
}
globalThis.addEventListener("error", (e) => {
  e.preventDefault();
  crash(e.error ?? e.message);
});
globalThis.addEventListener("unhandledrejection", (e) => {
  e.preventDefault();
  crash(e.reason);
});

/** What the main thread's observer (the live feed, the metrics) would have been told in this thread. */
class Relay implements PipelineObserver {
  alerts: SensorAlert[] = [];
  batches: [number, number][] = [];
  onAlert(alert: SensorAlert): void {
    this.alerts.push(alert);
  }
  onBatch(records: number, seconds: number): void {
    this.batches.push([records, seconds]);
  }
}

const relay = new Relay();
/** Per sensor, its event count in the last snapshot: a sensor is sent again once it changed. */
const sent = new Map<string, number>();
let service: Promise<EngineService> | null = null;
let timer: ReturnType<typeof setInterval> | undefined;
let engineGroup = "";

let snapshots = 0;
let sensorsWanted = false;
/** Per open episode sent, by alert id: its alert and acknowledgement as sent, and the round it was seen. */
const episodesSent = new Map<string, { alert: SensorAlert; acknowledged: boolean; round: number }>();
let round = 0;

/**
 * Open episodes whose alert changed since sent, and those gone. An alert changes as a new object
 * (a repeat, an acknowledgement), so comparing references finds the changes without copying.
 */
function changedEpisodes(p: NonNullable<EngineService["pipeline"]>): NonNullable<WorkerSnapshot["episodes"]> {
  round++;
  const changed: OpenEpisode[] = [];
  for (const ep of p.tracker.active()) {
    const alert = ep.alert;
    if (alert === null) continue;
    const sent = episodesSent.get(ep.alert_id);
    if (sent !== undefined && sent.alert === alert && sent.acknowledged === ep.acknowledged) {
      sent.round = round;
      continue;
    }
    episodesSent.set(ep.alert_id, { alert, acknowledged: ep.acknowledged, round });
    changed.push({ alert_id: ep.alert_id, rule_id: ep.rule_id, acknowledged: ep.acknowledged, alert });
  }
  const closed: string[] = [];
  for (const [id, sent] of episodesSent) {
    if (sent.round === round) continue;
    closed.push(id);
    episodesSent.delete(id);
  }
  return { changed, closed };
}

/** Sensors whose event count moved since they were last sent. */
function changedSensors(p: NonNullable<EngineService["pipeline"]>): SensorStats[] {
  const out: SensorStats[] = [];
  for (const st of p.stats.unordered()) {
    if (sent.get(st.sensor_id) === st.count) continue;
    sent.set(st.sensor_id, st.count);
    out.push(st);
  }
  return out;
}

/** `final`: every detail (a requested snapshot, the last one), sensors too unless `withSensors` is false. */
function snapshot(
  s: EngineService,
  final: boolean,
  withSensors: boolean,
): { snapshot: WorkerSnapshot; transfer: ArrayBuffer[] } {
  const p = s.pipeline!;
  const detail = final || snapshots++ % DETAIL_EVERY === 0;
  const sensors = (final && withSensors) || (detail && sensorsWanted)
    ? encodeSensors(changedSensors(p))
    : null;
  const source = s.kafka?.sources.find((x) => x.groupId === engineGroup);
  const { heapUsed, heapTotal, external } = Deno.memoryUsage();
  const out: WorkerSnapshot = {
    counters: p.counters,
    episodes: detail ? changedEpisodes(p) : null,
    episodeCount: p.tracker.size,
    sensors,
    alerts: relay.alerts,
    batches: relay.batches,
    memory: { heapUsed, heapTotal, external },
    source: {
      joined: source?.joined ?? false,
      problem: source?.problem ?? null,
      deletedUnread: source?.deletedUnread ?? new Map(),
      recreations: source?.recreations ?? 0,
      held: source?.held ?? new Map(),
    },
  };
  relay.alerts = [];
  relay.batches = [];
  return { snapshot: out, transfer: sensors === null ? [] : sensorBuffers(sensors) };
}

function post(s: EngineService, final = false, request: number | null = null, withSensors = true): void {
  const { snapshot: snap, transfer } = snapshot(s, final, withSensors);
  port.postMessage({ type: "snapshot", snapshot: snap, request }, transfer);
}

let go: () => void = () => {};
const joining = new Promise<void>((resolve) => go = resolve);
let startProcessing: () => void = () => {};
const processing = new Promise<void>((resolve) => startProcessing = resolve);

port.onmessage = async ({ data: msg }) => {
  switch (msg.type) {
    case "start": {
      const { config, index, crashAfter, hold } = msg;
      engineGroup = config.groups.engine;
      const log = logger.child({ worker: index });
      service = startEngineService({
        config,
        logger: log,
        observer: relay,
        beforeConsume: () => {
          port.postMessage({ type: "ready" });
          return joining;
        },
        ...(hold ? { processAfter: processing } : {}),
      });
      let s: EngineService;
      try {
        s = await service;
      } catch (err) {
        port.postMessage({ type: "failed", message: (err as Error)?.message ?? String(err) });
        return;
      }
      port.postMessage({ type: "started" });
      let crashed = false;
      timer = setInterval(() => {
        post(s);
        if (crashAfter !== null && !crashed && s.pipeline!.counters.events >= crashAfter.events) {
          crashed = true;
          if (crashAfter.heap) {
            // What a leak does: the heap fills until the worker reaches its limit (WORKER_HEAP_MIB).
            setTimeout(() => {
              const kept: number[][] = [];
              for (;;) kept.push(Array.from({ length: 1024 }, (_, i) => i));
            });
            return;
          }
          // Uncaught on purpose, wherever the engine is (often inside a transaction): what a bug does.
          setTimeout(() => {
            throw new Error(
              `Engine worker ${index} crashed on purpose after ${crashAfter.events} events (WORKERS_TEST_CRASH)`,
            );
          });
        }
      }, SNAPSHOT_MS);
      return;
    }
    case "go":
      go();
      return;
    case "process":
      startProcessing();
      return;
    case "sensors":
      sensorsWanted = msg.wanted;
      return;
    case "snapshot": {
      const s = await service?.catch(() => null);
      if (s) post(s, true, msg.id, msg.sensors);
      return;
    }
    case "ack": {
      try {
        // The main thread asks only a worker that said it started; null all the same if one did not.
        const s = await service;
        const alert = s === null ? null : await s.acknowledge(msg.alertId, msg.by);
        port.postMessage({ type: "acked", id: msg.id, alert, error: null });
      } catch (err) {
        port.postMessage({
          type: "acked",
          id: msg.id,
          alert: null,
          error: (err as Error)?.message ?? String(err),
        });
      }
      return;
    }
    case "stop": {
      clearInterval(timer);
      const s = await service?.catch(() => null);
      if (s) {
        await s.stop();
        post(s, true);
      }
      port.postMessage({ type: "stopped" });
      return;
    }
  }
};
