/**
 * The engine workers seen as one engine: their latest snapshots summed and merged, for the API,
 * the metrics and the dashboard (the same `EngineView` a Pipeline gives in one thread).
 *
 * @module
 */
import type { SensorAlert } from "../contract/schemas.ts";
import type { EngineView, OpenEpisode, SourceView, WorkerMemory } from "../engine/types.ts";
import { type Counters, emptyCounters } from "../pipeline.ts";
import { bySensorId, DEFAULT_MAX_SENSORS, type SensorStats } from "../stats/stats.ts";
import type { WorkerSnapshot } from "./protocol.ts";
import { decodeSensors } from "./sensors.ts";

export class WorkersView implements EngineView {
  /** Each worker's latest snapshot; null while it starts or restarts. */
  readonly #latest: (WorkerSnapshot | null)[];
  /** Each worker's open episodes by alert id, kept up to date by the changes its snapshots carry. */
  readonly #episodes: Map<string, OpenEpisode>[];
  /** What workers that died counted: counters only go up, across restarts too. */
  readonly #retired: Counters = emptyCounters();
  readonly #retiredDeleted = new Map<number, number>();
  /** The most recreations of the input topic a retired worker saw (every member sees each one). */
  #retiredRecreations = 0;
  readonly #sensors = new Map<string, SensorStats>();
  readonly #maxSensors: number;

  constructor(workers: number, maxSensors = DEFAULT_MAX_SENSORS) {
    this.#latest = Array.from({ length: workers }, () => null);
    this.#episodes = Array.from({ length: workers }, () => new Map());
    this.#maxSensors = maxSensors;
  }

  /** Takes a worker's snapshot in; returns the ids of the sensors it updated. */
  update(worker: number, s: WorkerSnapshot): string[] {
    this.#latest[worker] = s;
    const episodes = this.#episodes[worker]!;
    for (const id of s.episodes?.closed ?? []) episodes.delete(id);
    for (const ep of s.episodes?.changed ?? []) episodes.set(ep.alert_id, ep);
    const ids: string[] = [];
    for (const st of s.sensors === null ? [] : decodeSensors(s.sensors)) {
      if (!this.#sensors.has(st.sensor_id) && this.#sensors.size >= this.#maxSensors) {
        // The first met goes, as in StatsStore: the table's memory stays bounded under a flood of ids.
        this.#sensors.delete(this.#sensors.keys().next().value!);
      }
      this.#sensors.set(st.sensor_id, st);
      ids.push(st.sensor_id);
    }
    return ids;
  }

  /** A worker died: its counts are kept, its open episodes wait for its successor's snapshot. */
  retire(worker: number): void {
    const s = this.#latest[worker];
    if (s === null || s === undefined) return;
    addCounters(this.#retired, s.counters);
    for (const [p, n] of s.source.deletedUnread) {
      this.#retiredDeleted.set(p, (this.#retiredDeleted.get(p) ?? 0) + n);
    }
    this.#retiredRecreations = Math.max(this.#retiredRecreations, s.source.recreations);
    this.#latest[worker] = null;
    this.#episodes[worker]!.clear();
  }

  workerMemory(): WorkerMemory[] {
    return this.#latest.flatMap((s, worker) => s === null ? [] : [{ worker, ...s.memory }]);
  }

  /** The worker whose last snapshot has `alertId` open, or -1. */
  owner(alertId: string): number {
    return this.#episodes.findIndex((e) => e.has(alertId));
  }

  /** Shows an acknowledgement before the owner's next snapshot does. */
  acknowledged(worker: number, alert: SensorAlert): void {
    const episodes = this.#episodes[worker]!;
    const ep = episodes.get(alert.alert_id);
    if (ep !== undefined) episodes.set(alert.alert_id, { ...ep, acknowledged: true, alert });
  }

  joined(worker: number): boolean {
    return this.#latest[worker]?.source.joined ?? false;
  }

  get counters(): Counters {
    const sum = emptyCounters();
    addCounters(sum, this.#retired);
    for (const s of this.#latest) if (s !== null) addCounters(sum, s.counters);
    return sum;
  }

  get stats(): EngineView["stats"] {
    const sensors = this.#sensors;
    return {
      // One engine lists them by id; merged, they came in the order the workers' snapshots did.
      all: () => [...sensors.values()].sort(bySensorId),
      unordered: () => sensors.values(),
      get: (id) => sensors.get(id),
      get size() {
        return sensors.size;
      },
    };
  }

  get tracker(): EngineView["tracker"] {
    const latest = this.#latest;
    const episodes = this.#episodes;
    return {
      active: (): OpenEpisode[] => episodes.flatMap((e) => [...e.values()]),
      // An episode's alert says while it flaps (src/alerts/noise.ts); a flapping group whose episode
      // ended meanwhile is not seen from here.
      flapping: () =>
        episodes.flatMap((e) => [...e.values()]).filter((ep) => ep.alert?.flapping === true).map((ep) => ({
          rule_id: ep.rule_id,
          group: ep.alert!.group ?? ep.alert!.sensor_id,
        })),
      get size() {
        return latest.reduce((n, s) => n + (s?.episodeCount ?? 0), 0);
      },
    };
  }

  /** The workers' members of the engine's consumer group, as one consumer. */
  source(groupId: string, topic: string, running: () => boolean): SourceView {
    const latest = this.#latest;
    const retired = this.#retiredDeleted;
    const retiredRecreations = () => this.#retiredRecreations;
    return {
      groupId,
      topic,
      get joined() {
        return running() && latest.every((s) => s?.source.joined ?? false);
      },
      get problem() {
        return latest.find((s) => s?.source.problem)?.source.problem ?? null;
      },
      get deletedUnread() {
        const sum = new Map(retired);
        for (const s of latest) {
          for (const [p, n] of s?.source.deletedUnread ?? []) sum.set(p, (sum.get(p) ?? 0) + n);
        }
        return sum;
      },
      // Each partition is one worker's: their holds side by side.
      get held() {
        return new Map(latest.flatMap((s) => [...s?.source.held ?? []]));
      },
      // Each worker notices the same recreation: the count is the topic's, not the sum of theirs.
      get recreations() {
        return Math.max(retiredRecreations(), ...latest.map((s) => s?.source.recreations ?? 0));
      },
    };
  }
}

const COUNTS = [
  "events",
  "accepted",
  "duplicates",
  "dead_lettered",
  "alerts",
  "aggregates",
  "late_events",
  "sensors_forgotten",
  "state_unwritten",
] as const satisfies readonly (keyof Counters)[];

function addCounters(into: Counters, from: Counters): void {
  for (const k of COUNTS) into[k] += from[k];
  for (const [k, n] of Object.entries(from.dead_letters)) {
    into.dead_letters[k] = (into.dead_letters[k] ?? 0) + n;
  }
  into.sequence_dropped.cap += from.sequence_dropped?.cap ?? 0;
  into.sequence_dropped.timeout += from.sequence_dropped?.timeout ?? 0;
  for (const key of ["consumed", "invalid"] as const) {
    for (const [k, n] of from[key]) into[key].set(k, (into[key].get(k) ?? 0) + n);
  }
}
