import { AlertTracker, endedNotice, type Episode, type Sample } from "../alerts/lifecycle.ts";
import { escalationDue } from "../alerts/noise.ts";
import type { AggregatedSensorEvent, SensorAlert, SensorEvent, SensorType } from "../contract/schemas.ts";
import type { Verdict } from "../contract/records.ts";
import { exportAnomalyState, importAnomalyState, type SlotState } from "./anomaly.ts";
import type { CompiledRule } from "./compile.ts";
import { ChangeTracker, type DeadmanTimer, type StateChange, type StateKind } from "./changes.ts";
import { type Deadline, DeadlineQueue } from "./deadlines.ts";
import type { Limits, ResolvedLimits, TopicEntry } from "./limits.ts";
import {
  addPending,
  dropOldest,
  exportSequenceGroup,
  importSequenceGroup,
  keepPending,
  type Pending,
  type SequenceGroup,
  SequenceState,
  takePending,
} from "./sequences.ts";
import type { RuleSet } from "./ruleset.ts";
import { type ClosedWindow, WindowState } from "./windows.ts";

/** What evaluating an event (or a clock tick) produced. */
export interface EngineOutput {
  alerts: SensorAlert[];
  aggregates: AggregatedSensorEvent[];
  /** Rules that threw on this input; the event goes on to the other rules. */
  errors: { rule: CompiledRule; error: Error }[];
}

export function emptyOutput(): EngineOutput {
  return { alerts: [], aggregates: [], errors: [] };
}

/**
 * A deadman rule's timer of one sensor. As a `Deadline` of its rule's queue, `due` is when the clock
 * must next look at the sensor: its deadline, or once past it when its alert has something to do (see
 * `RuleEngine.#checkDeadman`); not queued when nothing will until the sensor speaks.
 */
interface Seen extends Omit<DeadmanTimer, "rule_hash">, Deadline {
  readonly id: string;
  /** The sensor's place in its rule's map, the order the clock looks at due sensors in. */
  order: number;
  /** `last` as the changelog last recorded it (checkpoints write deadman timers coarsely). */
  saved?: number;
}

function _seen(
  id: string,
  last: number,
  sensor_type: SensorType,
  unit: string,
  location: string | null,
  never: boolean,
): Seen {
  const seen: Seen = {
    id,
    last,
    sensor_type,
    unit,
    location,
    due: Infinity,
    slot: -1,
    prev: null,
    next: null,
    order: 0,
  };
  if (never) seen.never = true;
  return seen;
}

/** What the engine keeps per sensor. */
interface SensorState {
  /** The newest event time (-Infinity: none yet, the sensor's state came from the changelog). */
  time: number;
  /**
   * The first anomaly rule's baselines (by its stateHash, null: none): in the sensor's own record, so
   * the usual sensor, judged by one anomaly rule, finds them with no lookup besides its own (a lookup
   * per rule and event was the largest part of a zscore rule's own cost in its profile). For a rule of
   * one operation, the usual one, `anomalyState` is that operation's state itself rather than an array
   * of one: an object and an array less to load per event (they were an object of their own holding the
   * array; scripts/bench/fleet_ab.ts, three runs: robust_zscore 2.10-2.40x a threshold rule before,
   * 1.70-1.76x after). Other rules' baselines are in `anomalyMore`.
   */
  anomalyKey: string | null;
  anomalyState: SlotState[] | SlotState;
  anomalyMore: Map<string, SlotState[]> | null;
  /**
   * The band a `limits:` rule last resolved for it, and under which tables, rule and location, at
   * which version of the limits topic and with which topic entry of the sensor.
   */
  band: {
    limits: Limits;
    rule: CompiledRule;
    location: string | null;
    version: number;
    own: TopicEntry | undefined;
    band: ResolvedLimits | null;
  } | null;
  /**
   * The rules that can match the sensor (`RuleSet.candidates`), for the rule set and sensor type they
   * were found under: the sensor's state is looked up for every event anyway, the rule set's cache
   * took two more lookups (by type, then id) in maps of every sensor.
   */
  rules: { of: RuleSet; type: string; list: readonly CompiledRule[] } | null;
}

/** A sensor's baselines under a rule (by its stateHash), as `AnomalyProgram.observe` takes them. */
function _anomalyOf(sensor: SensorState | undefined, key: string): SlotState[] | undefined {
  if (sensor === undefined) return undefined;
  if (sensor.anomalyKey !== key) return sensor.anomalyMore?.get(key);
  const s = sensor.anomalyState;
  return Array.isArray(s) ? s : [s];
}

function _setAnomaly(sensor: SensorState, key: string, state: SlotState[] | undefined): void {
  if (sensor.anomalyKey === key || sensor.anomalyKey === null) {
    sensor.anomalyKey = state === undefined ? null : key;
    sensor.anomalyState = state === undefined || state.length !== 1 ? state ?? null : state[0]!;
    sensor.anomalyMore?.delete(key);
  } else if (state !== undefined) {
    (sensor.anomalyMore ??= new Map()).set(key, state);
  } else {
    sensor.anomalyMore?.delete(key);
  }
}

/**
 * Deadman state of one rule: when each matching sensor was last seen, by event time, and the sensors
 * by when the clock must next look at them. The clock walked every sensor at each look before: at
 * 100,000 sensors, 90,000 of them silent and firing, each look held the event loop 91 ms, 259 ms with
 * the changelog records it wrote again for every silent sensor (scripts/bench/deadman_tick.ts).
 */
class DeadmanState {
  readonly sensors = new Map<string, Seen>();
  readonly queue = new DeadlineQueue<Seen>();
  /**
   * The queue is to be built again from every sensor before the next look: what decides a sensor's
   * next look changed for many at once (a reload, a restore, sensors that moved to other partitions).
   */
  stale = true;
  /** Every sensor `sensor_id` lists has a timer (false: the next look must add those missing). */
  listed = false;
  #order = 0;

  /** Sets a sensor's timer; one that replaces another keeps its place, as a Map's key does. */
  put(seen: Seen): void {
    const before = this.sensors.get(seen.id);
    if (before === undefined) seen.order = this.#order++;
    else {
      seen.order = before.order;
      this.queue.delete(before);
    }
    this.sensors.set(seen.id, seen);
  }

  delete(id: string): void {
    const seen = this.sensors.get(id);
    if (seen === undefined) return;
    this.queue.delete(seen);
    this.sensors.delete(id);
    this.listed = false;
  }
}

interface DeadmanRule {
  /** The rule as it is now (a reload that keeps its scope keeps its state, under its new timing). */
  rule: CompiledRule;
  /** The rule's `scopeHash`: last-seen times are facts about the sensors it selects, whatever its timing. */
  scope: string;
  state: DeadmanState;
  /** The clock when the rule (as it is now) was loaded: listed sensors that never spoke count from here. */
  since: number;
}

const NO_VERDICT: Verdict = { threshold: null, bound: null };

/**
 * Sensors one engine (one input partition) keeps by default. Each costs ~190 bytes with nothing but
 * its newest event time, more with baselines, deadman timers and episodes: a producer inventing sensor
 * ids (or a counter in an id) grew the heap by ~550 bytes per id for ever before there was a limit.
 */
export const DEFAULT_MAX_SENSORS = 100_000;

/** An event of a new sensor, refused because its engine holds state for its limit of sensors. */
export class SensorLimitError extends Error {
  override readonly name = "SensorLimitError";
}

/**
 * Runs events through the rules: event rules test each event, window rules aggregate and test each
 * closed window, deadman rules watch for silence. All of it by event time, so a replay or a
 * `rules:test` in virtual time behaves like the live stream.
 *
 * Three clocks, so that one sensor stamped ahead cannot move the others' time:
 * - each sensor's newest event time: an event older than it does not change the sensor's event-rule
 *   episodes;
 * - each window group's newest event time: it closes the group's windows and makes its late events late;
 * - the engine's clock (one engine per input partition): the newest event time seen; in a live
 *   stream (`wallNow` given) only events stamped at or before the wall clock move it, and the ticks
 *   move it on by the wall time elapsed since it last moved. It closes the windows of quiet groups and
 *   judges deadman rules. Without a wall clock (replay, rule tests) it is the newest event time.
 */
export class RuleEngine {
  readonly tracker = new AlertTracker();
  readonly #windows = new Map<string, { hash: string; state: WindowState }>();
  readonly #deadman = new Map<string, DeadmanRule>();
  /** Rules with anomaly operations, by id: `hash`, the rule's stateHash, keys its baselines per sensor. */
  readonly #anomaly = new Map<string, { hash: string }>();
  /** Partial matches of each sequence rule, by group; `hash` is the rule's stateHash. */
  readonly #sequences = new Map<string, { hash: string; state: SequenceState }>();
  #ruleSet: RuleSet | null = null;
  #clock = -Infinity;
  #wallAtClock = Infinity;
  /**
   * The newest event time the state restored from the changelog holds: the clock of a partition that
   * stays quiet after a restart or a rebalance goes on from there (its previous owner's clock is lost).
   */
  #restoredClock = -Infinity;
  #startedAt: number | null = null;
  /** Each sensor's newest event time and anomaly baselines. */
  readonly #sensors = new Map<string, SensorState>();
  readonly #maxSensors: number;
  /** New sensors to refuse before looking again for sensors to forget (a look found too few). */
  #refuseBeforeLook = 0;
  /** Sensors forgotten at the limit: they held nothing but their newest event time. */
  sensorsForgotten = 0;
  /** Events of new sensors refused at the limit (dead-lettered by the pipeline). */
  sensorsRefused = 0;

  /** `maxSensors`: the sensors it keeps state for (DEFAULT_MAX_SENSORS); see `#admit`. */
  /**
   * `deadmanWalk`: the clock looks at every sensor of a deadman rule at every look, as it did before
   * the queue of due sensors; the reference of tests/rules/deadman_queue_differential_test.ts, never
   * set by the service (91 ms per look at 100,000 sensors, see `#checkDeadman`).
   */
  constructor(opts: { maxSensors?: number; deadmanWalk?: boolean } = {}) {
    this.#maxSensors = opts.maxSensors ?? DEFAULT_MAX_SENSORS;
    this.#deadmanWalk = opts.deadmanWalk ?? false;
  }
  readonly #deadmanWalk: boolean;
  /** The earliest clock at which a window closes or a deadman rule can fire (a lower bound). */
  #due = Infinity;
  /** Notices from a reload (episodes that ended with their rule), published with the next output. */
  readonly #notices: SensorAlert[] = [];
  /** Restored episodes of rules that changed while the service was down: ended with the next output. */
  #orphans: Episode[] = [];
  lateEvents = 0;
  /** Partial sequence matches dropped because their group held `max_open` already. */
  sequenceDropped = 0;
  /** Partial A-then-B matches whose B did not come within `within`. */
  sequenceExpired = 0;
  /** Events older than their sensor's newest, which event rules did not evaluate. */
  outOfOrder = 0;
  /** When state is checkpointed: what changed since the last `takeChanges()`. */
  #changes: ChangeTracker | null = null;

  /** Starts recording which state changes, for `takeChanges()`. */
  trackChanges(): void {
    this.#changes ??= new ChangeTracker();
  }

  #mark(kind: StateKind, rule: string, group: string): void {
    if (this.#changes === null) return;
    this.#changes.mark(kind, rule, group);
    // An episode's transitions are also its rule's flap history (src/alerts/noise.ts).
    if (kind === "episode" && this.#ruleSet?.byId.get(rule)?.flapping) {
      this.#changes.mark("flap", rule, group);
    }
  }

  /** True when state changed since the last `takeChanges()`. */
  get changed(): boolean {
    return this.#changes?.pending ?? false;
  }

  /** The current value of every piece of state that changed since the last call. */
  takeChanges(): StateChange[] {
    return this.#changes?.take((kind, rule, group) => this.#value(kind, rule, group)) ?? [];
  }

  #value(kind: StateKind, rule: string, group: string): StateChange["value"] {
    if (kind === "episode") return this.tracker.episode(rule, group) ?? null;
    if (kind === "flap") return this.tracker.flaps.get(rule, group) ?? null;
    if (kind === "window") {
      const w = this.#windows.get(rule);
      const data = w?.state.exportGroup(group);
      return w === undefined || data == null ? null : { rule_hash: w.hash, ...data };
    }
    if (kind === "sequence") {
      const q = this.#sequences.get(rule);
      return q === undefined ? null : exportSequenceGroup(q.hash, q.state.groups.get(group));
    }
    if (kind === "anomaly") {
      const a = this.#anomaly.get(rule);
      const state = a === undefined ? undefined : _anomalyOf(this.#sensors.get(group), a.hash);
      return a === undefined || state === undefined ? null : exportAnomalyState(a.hash, state);
    }
    const d = this.#deadman.get(rule);
    const seen = d?.state.sensors.get(group);
    if (d === undefined || seen === undefined) return null;
    return {
      rule_hash: d.scope,
      last: seen.last,
      sensor_type: seen.sensor_type,
      unit: seen.unit,
      location: seen.location,
      ...(seen.never ? { never: true } : {}),
    };
  }

  /**
   * Applies entries read back from the state changelog (newest last). State of rules that changed or
   * are gone since it was written is ignored, as a reload would have dropped it.
   */
  importState(entries: Iterable<StateChange>): number {
    let applied = 0;
    const orphans = new Map<string, Episode>();
    for (const e of entries) {
      const rule = this.#ruleSet?.byId.get(e.rule);
      // Changelogs written before state fingerprints carry the whole definition's: same rule, same state.
      const legacy = (hash: string) => rule !== undefined && hash === rule.hash;
      this.#restoredClock = Math.max(this.#restoredClock, _newestTime(e));
      if (e.kind === "episode") {
        const ep = e.value;
        const key = `${e.rule}\u0000${e.group}`;
        orphans.delete(key);
        if (ep === null) this.tracker.forget(e.rule, e.group);
        else if (rule?.rule.enabled && (rule.stateHash === ep.rule_hash || legacy(ep.rule_hash))) {
          this.tracker.restore({ ...ep, rule_hash: rule.stateHash });
        } else {
          // Written under a rule that has changed since: it ends with a notice, as a reload would.
          this.tracker.forget(e.rule, e.group);
          orphans.set(key, ep);
          continue;
        }
      } else if (e.kind === "flap") {
        const f = e.value;
        if (f === null) this.tracker.flaps.forget(e.rule, e.group);
        else if (rule?.rule.enabled && rule.stateHash === f.rule_hash) {
          this.tracker.flaps.restore(e.rule, e.group, f);
        } else continue;
      } else if (e.kind === "window") {
        const w = this.#windows.get(e.rule);
        const v = e.value;
        if (w === undefined || (v !== null && v.rule_hash !== w.hash && !legacy(v.rule_hash))) continue;
        w.state.dropGroup(e.group);
        if (v !== null) w.state.importGroup(e.group, v);
      } else if (e.kind === "sequence") {
        const q = this.#sequences.get(e.rule);
        if (q === undefined) continue;
        const g = importSequenceGroup(e.value, q.hash);
        if (g !== null) q.state.groups.set(e.group, g);
        else if (e.value === null) q.state.groups.delete(e.group);
        else continue;
      } else if (e.kind === "anomaly") {
        const a = this.#anomaly.get(e.rule);
        if (a === undefined) continue;
        const state = importAnomalyState(e.value, a.hash, rule!.anomaly!.program.slots);
        if (state === null && e.value !== null) continue;
        _setAnomaly(this.#sensor(e.group), a.hash, state ?? undefined);
      } else {
        const d = this.#deadman.get(e.rule);
        const v = e.value;
        if (d === undefined || (v !== null && v.rule_hash !== d.scope && !legacy(v.rule_hash))) continue;
        d.state.stale = true;
        if (v === null) d.state.delete(e.group);
        else d.state.put(_seen(e.group, v.last, v.sensor_type, v.unit, v.location, v.never === true));
      }
      applied++;
    }
    this.#orphans.push(...orphans.values());
    // Restored episodes change when deadman timers are next due.
    for (const d of this.#deadman.values()) d.state.stale = true;
    this.#due = -Infinity;
    return applied;
  }

  /** Acknowledges an open episode (see AlertTracker.acknowledge) and records the change. */
  acknowledge(alertId: string, by?: string): SensorAlert | null {
    const alert = this.tracker.acknowledge(alertId, by);
    if (alert !== null) this.#mark("episode", alert.rule_id, alert.group ?? alert.sensor_id);
    return alert;
  }

  /**
   * Swaps the rule set between two events. State carries over for rules whose `stateHash` did not
   * change (an edit of the message, labels, priority, repeats or publishing); other rules start fresh,
   * and their firing episodes end with a resolved notice saying why, published with the next output.
   * A deadman rule whose selectors did not change keeps its sensors' last-seen times.
   */
  setRules(ruleSet: RuleSet): { dropped: number } {
    if (ruleSet === this.#ruleSet) return { dropped: 0 };
    this.#ruleSet = ruleSet;
    // A band kept from the tables before would hold them in memory until each sensor's next event.
    for (const sensor of this.#sensors.values()) sensor.band = null;
    const before = this.#notices.length;
    let dropped = this.tracker.carryOver(ruleSet, this.#clock, this.#notices);
    for (const a of this.#notices.slice(before)) {
      this.#mark("episode", a.rule_id, String(a.group ?? a.sensor_id));
    }
    const flapsDropped = this.tracker.flaps.dropWhere((id, hash) => {
      const r = ruleSet.byId.get(id);
      return r !== undefined && r.rule.enabled && r.flapping !== null && r.stateHash === hash;
    });
    for (const [rule, group] of flapsDropped) this.#mark("flap", rule, group);
    const live = (id: string) => {
      const r = ruleSet.byId.get(id);
      return r !== undefined && r.rule.enabled ? r : undefined;
    };
    for (const [id, w] of this.#windows) {
      const r = live(id);
      if (r?.stateHash === w.hash) {
        w.state.spec = r.window!;
      } else {
        this.#windows.delete(id);
        dropped++;
      }
    }
    for (const [id, q] of this.#sequences) {
      if (live(id)?.stateHash !== q.hash) {
        this.#sequences.delete(id);
        dropped++;
      }
    }
    for (const [id, a] of this.#anomaly) {
      if (live(id)?.stateHash !== a.hash) {
        for (const sensor of this.#sensors.values()) _setAnomaly(sensor, a.hash, undefined);
        this.#anomaly.delete(id);
        dropped++;
      }
    }
    const since = Number.isFinite(this.#clock) ? this.#clock : null;
    for (const [id, d] of this.#deadman) {
      const r = live(id);
      if (r === undefined || r.kind !== "deadman" || r.scopeHash !== d.scope) {
        this.#deadman.delete(id);
        dropped++;
      }
    }
    for (const r of ruleSet.rules) {
      if (r.sequence !== null && !this.#sequences.has(r.rule.id)) {
        this.#sequences.set(r.rule.id, { hash: r.stateHash, state: new SequenceState() });
      }
      if (r.anomaly !== null && !this.#anomaly.has(r.rule.id)) {
        this.#anomaly.set(r.rule.id, { hash: r.stateHash });
      }
      if (r.window !== null && !this.#windows.has(r.rule.id)) {
        this.#windows.set(r.rule.id, {
          hash: r.stateHash,
          state: new WindowState(r.window, this.#maxSensors),
        });
      }
      if (r.kind === "deadman") {
        const d = this.#deadman.get(r.rule.id);
        if (d === undefined) {
          this.#deadman.set(r.rule.id, {
            rule: r,
            scope: r.scopeHash,
            state: new DeadmanState(),
            since: since ?? -Infinity,
          });
        } else {
          // Its timing (for, repeat_interval, absent_for) may have changed, and its episodes ended.
          d.rule = r;
          d.state.stale = true;
          d.state.listed = false;
        }
      }
    }
    this.#due = -Infinity;
    return { dropped };
  }

  /**
   * Ends the state of the sensors that left this partition: partitions were added to the input topic,
   * and a sensor whose key (`<sensor_type>:<sensor_id>`) no longer `stays` is judged by its new
   * partition from now on. Its firing event and deadman episodes end with a resolved notice ("partition
   * changed") and its deadman timer is dropped, so it neither stays firing for ever here nor is
   * reported silent by the partition it left. Window state is left alone: a window group is not a
   * sensor. Returns the number of sensors released.
   */
  releaseSensors(stays: (sensorKey: string) => boolean, out: EngineOutput): number {
    const released = new Set<string>();
    const ended = this.tracker.endWhere(
      (ep) => {
        const kind = this.#ruleSet?.byId.get(ep.rule_id)?.kind;
        if (ep.alert === null || kind === "window" || kind === "sequence") return false;
        const key = `${ep.alert.sensor_type}:${ep.alert.sensor_id}`;
        if (stays(key)) return false;
        released.add(key);
        return true;
      },
      "partition changed",
      this.#clock,
      out.alerts,
    );
    for (const ep of ended) this.#mark("episode", ep.rule_id, ep.group);
    for (const [id, d] of this.#deadman) {
      // Episodes ended: what is due when is found again at the next look.
      d.state.stale = true;
      for (const [sensor, seen] of d.state.sensors) {
        const key = `${seen.sensor_type}:${sensor}`;
        if (stays(key)) continue;
        d.state.delete(sensor);
        this.#mark("deadman", id, sensor);
        released.add(key);
      }
    }
    for (const key of released) {
      const id = key.slice(key.indexOf(":") + 1);
      const sensor = this.#sensors.get(id);
      for (const [rule, a] of this.#anomaly) {
        if (_anomalyOf(sensor, a.hash) !== undefined) this.#mark("anomaly", rule, id);
      }
      this.#sensors.delete(id);
    }
    return released.size;
  }

  get ruleSet(): RuleSet | null {
    return this.#ruleSet;
  }

  /** Sensors whose state the engine keeps now. */
  get sensorCount(): number {
    return this.#sensors.size;
  }

  /** The engine clock (event time), or -Infinity before the first event or tick. */
  now(): number {
    return this.#clock;
  }

  /**
   * Evaluates one accepted event against every rule that can match it. `wallNow` is the wall clock
   * in a live stream (the clock never moves past it); leave it out in a replay or a rule test.
   */
  onEvent(event: SensorEvent, time: number, out: EngineOutput, wallNow = Infinity): void {
    const ruleSet = this.#ruleSet;
    if (ruleSet === null) return;
    if (this.#sensors.size >= this.#maxSensors && !this.#sensors.has(event.sensor_id)) this.#admit();
    // An event stamped ahead of the wall clock does not move the clock (the ticks do): one sensor
    // whose clock runs ahead cannot close others' windows or make them look silent.
    const t = time <= wallNow ? time : this.#clock === -Infinity ? wallNow : -Infinity;
    if (t > this.#clock) {
      this.#clock = t;
      this.#wallAtClock = wallNow;
    }
    this.#startedAt ??= t;
    if (this.#notices.length + this.#orphans.length > 0) this.#publishNotices(out);
    const sensor = this.#sensor(event.sensor_id);
    const current = time >= sensor.time;
    if (time > sensor.time) sensor.time = time;
    else if (!current) this.outOfOrder++;
    let cached = sensor.rules;
    if (cached === null || cached.of !== ruleSet || cached.type !== event.sensor_type) {
      sensor.rules = cached = { of: ruleSet, type: event.sensor_type, list: ruleSet.candidates(event) };
    }
    for (const rule of cached.list) {
      try {
        if (!rule.selects(event)) continue;
        switch (rule.kind) {
          case "event":
            if (current) this.#observeEvent(rule, event, time, out, sensor);
            break;
          case "window":
            this.#observeWindow(rule, event, time, out);
            break;
          case "deadman":
            this.#observeDeadman(rule, event, time, out);
            break;
          case "sequence":
            this.#observeSequence(rule, event, time, out);
            break;
        }
      } catch (err) {
        out.errors.push({ rule, error: err instanceof Error ? err : new Error(String(err)) });
      }
    }
    if (this.#clock >= this.#due) this.#runClock(this.#clock, out);
  }

  /**
   * Moves the clock on while the stream is idle: by the wall time elapsed since the clock last moved,
   * or to `virtualNow` (rule tests' `ticks`). Closes windows, fires deadman alerts, repeats.
   */
  tick(out: EngineOutput, wallNow = Date.now(), virtualNow?: number): void {
    if (this.#ruleSet === null) return;
    let now: number;
    if (virtualNow !== undefined) {
      now = virtualNow;
      if (now > this.#clock) this.#clock = now;
    } else {
      if (this.#clock === -Infinity) {
        // Restored and quiet since: without this a silent fleet on a moved partition was never
        // reported, and its windows never closed, until its next record came.
        if (this.#restoredClock === -Infinity) return;
        this.#clock = this.#restoredClock;
        this.#wallAtClock = wallNow;
      }
      now = this.#clock + Math.max(0, wallNow - this.#wallAtClock);
      if (now > this.#clock) {
        this.#clock = now;
        this.#wallAtClock = wallNow;
      }
    }
    this.#startedAt ??= now;
    if (this.#notices.length + this.#orphans.length > 0) this.#publishNotices(out);
    if (now >= this.#due) this.#runClock(now, out);
  }

  /** Publishes the notices of episodes that ended with their rule (a reload, a restart). */
  #publishNotices(out: EngineOutput): void {
    out.alerts.push(...this.#notices.splice(0));
    for (const ep of this.#orphans) {
      // The changelog learns that it ended (the restore itself records nothing).
      this.#mark("episode", ep.rule_id, ep.group);
      const notice = endedNotice(ep, this.#ruleSet!, this.#clock);
      if (notice !== null) out.alerts.push(notice);
    }
    this.#orphans = [];
  }

  /** The end of the input (a replay, a rule test): every open time window closes now. */
  flush(out: EngineOutput): void {
    const ruleSet = this.#ruleSet;
    if (ruleSet === null) return;
    if (this.#notices.length + this.#orphans.length > 0) this.#publishNotices(out);
    for (const rule of ruleSet.rules) {
      if (rule.kind !== "window") continue;
      try {
        const closed: ClosedWindow[] = [];
        this.#windows.get(rule.rule.id)!.state.flush(closed);
        for (const c of closed) this.#onClosed(rule, c, out);
      } catch (err) {
        out.errors.push({ rule, error: err instanceof Error ? err : new Error(String(err)) });
      }
    }
  }

  /** Closes the windows and runs the deadman checks that are due at `now`; finds the next due time. */
  #runClock(now: number, out: EngineOutput): void {
    let due = Infinity;
    for (const rule of this.#ruleSet!.rules) {
      try {
        if (rule.kind === "window") {
          const w = this.#windows.get(rule.rule.id)!.state;
          const closed: ClosedWindow[] = [];
          w.advance(now, closed);
          for (const c of closed) this.#onClosed(rule, c, out);
          due = Math.min(due, w.nextDue());
        } else if (rule.kind === "deadman") {
          due = Math.min(due, this.#checkDeadman(rule, now, out));
        } else if (rule.kind === "sequence") {
          due = Math.min(due, this.#checkSequence(rule, now, out));
        }
        if (rule.flapping !== null) {
          const id = rule.rule.id;
          due = Math.min(
            due,
            this.tracker.settleFlaps(rule, now, out.alerts, (g) => this.#mark("episode", id, g)),
          );
        }
        if (rule.escalate.length > 0) {
          const id = rule.rule.id;
          due = Math.min(
            due,
            this.tracker.escalate(rule, now, out.alerts, (ep) => this.#mark("episode", id, ep.group)),
          );
        }
      } catch (err) {
        out.errors.push({ rule, error: err instanceof Error ? err : new Error(String(err)) });
        due = Math.min(due, now + 1000);
      }
    }
    this.#due = due;
  }

  /**
   * Makes room for a new sensor at the limit, or throws a SensorLimitError. Sensors that hold nothing
   * but their newest event time (no baselines, no deadman timer, no episode) are forgotten, those met
   * first first: what a restart does to every sensor's newest time, so an event of one that comes back
   * is judged as after a restart. When fewer than a tenth of the limit can go, the next tenth of new
   * sensors is refused without looking again: a look walks every sensor.
   */
  #admit(): void {
    if (this.#refuseBeforeLook > 0) {
      this.#refuseBeforeLook--;
      this.sensorsRefused++;
      throw new SensorLimitError(this.#limitMessage());
    }
    const held = new Set<string>();
    for (const ep of this.tracker.all()) {
      held.add(ep.group);
      if (ep.alert !== null) held.add(ep.alert.sensor_id);
    }
    for (const d of this.#deadman.values()) for (const id of d.state.sensors.keys()) held.add(id);
    const target = Math.floor(this.#maxSensors * 0.9);
    for (const [id, sensor] of this.#sensors) {
      if (this.#sensors.size <= target) break;
      if (sensor.anomalyKey !== null || (sensor.anomalyMore?.size ?? 0) > 0 || held.has(id)) continue;
      this.#sensors.delete(id);
      this.sensorsForgotten++;
    }
    if (this.#sensors.size > target) this.#refuseBeforeLook = Math.ceil(this.#maxSensors / 10);
    if (this.#sensors.size >= this.#maxSensors) {
      this.#refuseBeforeLook = Math.max(0, this.#refuseBeforeLook - 1);
      this.sensorsRefused++;
      throw new SensorLimitError(this.#limitMessage());
    }
  }

  #limitMessage(): string {
    return `This partition's engine holds state (baselines, deadman timers or alerts) for ` +
      `${this.#sensors.size} sensors, its limit (MAX_SENSORS_PER_PARTITION=${this.#maxSensors}): ` +
      "events of new sensors are refused until some of that state ends or the limit is raised";
  }

  /** A sensor's state, created (with no time yet) on first use. */
  #sensor(id: string): SensorState {
    let sensor = this.#sensors.get(id);
    if (sensor === undefined) {
      this.#sensors.set(
        id,
        sensor = {
          time: -Infinity,
          anomalyKey: null,
          anomalyState: null,
          anomalyMore: null,
          band: null,
          rules: null,
        },
      );
    }
    return sensor;
  }

  #observeEvent(
    rule: CompiledRule,
    event: SensorEvent,
    time: number,
    out: EngineOutput,
    sensor: SensorState,
  ): void {
    if (rule.anomaly !== null) {
      this.#observeAnomaly(rule, event, time, out, sensor);
      return;
    }
    if (rule.limitsName !== null) {
      this.#observeLimits(rule, event, time, out, sensor);
      return;
    }
    const verdict = rule.test(event);
    // The common case, nothing open and nothing firing, allocates nothing.
    if (verdict === null && this.tracker.episode(rule.rule.id, event.sensor_id) === undefined) return;
    const cleared = verdict === null ? rule.clears(event) : false;
    this.#observeSample(rule, eventSample(event, time), verdict, verdict === null && cleared, out);
  }

  /**
   * One observation of an event rule's group: the episode moves on, and only a changed episode goes to
   * the changelog (one that went on as it was, a firing sensor still out of range, was a quarter of the
   * episodes written, ~840 bytes each with the alert and its event); then the clock is told when the
   * group needs a look for escalation and flap settling.
   */
  #observeSample(
    rule: CompiledRule,
    sample: Sample,
    verdict: Verdict | null,
    cleared: boolean,
    out: EngineOutput,
  ): void {
    if (this.tracker.observe(rule, sample, verdict, cleared, out.alerts)) {
      this.#mark("episode", rule.rule.id, sample.group);
    }
    this.#watch(rule, sample.group);
  }

  /** After an observation: the clock must come back for the group's escalation and flap settling. */
  #watch(rule: CompiledRule, group: string): void {
    if (rule.flapping === null && rule.escalate.length === 0) return;
    let due = Infinity;
    if (rule.flapping !== null) due = this.tracker.flaps.due(rule.rule.id, group, rule.flapping);
    const ep = this.tracker.episode(rule.rule.id, group);
    if (ep !== undefined && rule.escalate.length > 0) due = Math.min(due, escalationDue(rule.escalate, ep));
    if (due < this.#due) this.#due = due;
  }

  /**
   * A `limits:` rule: the sensor's band is looked up in the tables in force for each event, so an
   * edited table applies to the next event and an open episode goes on under it. A sensor the table
   * has no band for is not judged (an open episode of it resolves).
   */
  #observeLimits(
    rule: CompiledRule,
    event: SensorEvent,
    time: number,
    out: EngineOutput,
    sensor: SensorState,
  ): void {
    const limits = this.#ruleSet!.limits;
    const location = event.location ?? null;
    // The band of the sensor's last event under the same tables, rule and location (the usual case):
    // the table's lookup among 10,000 sensors made a limits rule 1.4x a threshold rule, 1.0x without it.
    // A change of the limits topic keeps the rule set, and this cache: the band still holds unless the
    // sensor's own topic entry changed, which one lookup tells, once per change. (Each change made a
    // new rule set before: every engine's setRules, O(sensors + episodes), dropped every sensor's band
    // and candidate rules, four times a second while the topic was written.)
    const c = sensor.band;
    const version = limits.topicVersion;
    let cached = c !== null && c.limits === limits && c.rule === rule && c.location === location;
    if (cached && c!.version !== version) {
      cached = c!.own === limits.topicEntry(event.sensor_id);
      if (cached) c!.version = version;
    }
    let band: ResolvedLimits | null;
    if (cached) {
      band = c!.band;
    } else {
      band = limits.resolve(rule.limitsName!, event.sensor_id, location, event.sensor_type);
      const own = limits.topicEntry(event.sensor_id);
      if (c === null) sensor.band = { limits, rule, location, version, own, band };
      else if (c.limits !== limits || c.rule === rule) {
        c.limits = limits;
        c.rule = rule;
        c.location = location;
        c.version = version;
        c.own = own;
        c.band = band;
      }
    }
    const v = event.value;
    let verdict: Verdict | null = null;
    let cleared = true;
    if (band !== null) {
      verdict = band.min !== null && v < band.min
        ? band.below
        : band.max !== null && v > band.max
        ? band.above
        : null;
      const h = rule.rule.hysteresis ?? 0;
      cleared = verdict === null && (band.min === null || v >= band.min + h) &&
        (band.max === null || v <= band.max - h);
    }
    if (verdict === null && this.tracker.episode(rule.rule.id, event.sensor_id) === undefined) return;
    this.#observeSample(rule, eventSample(event, time), verdict, cleared, out);
  }

  /** An event rule with anomaly operations: judged against the sensor's baselines, then learnt into them. */
  #observeAnomaly(
    rule: CompiledRule,
    event: SensorEvent,
    time: number,
    out: EngineOutput,
    sensor: SensorState,
  ): void {
    const { program, used } = rule.anomaly!;
    const key = rule.stateHash;
    // Judged against the baselines before the event, which then goes into them (the verdict and the
    // explanation below read the figures this keeps, not the state).
    const inline = sensor.anomalyKey === key ||
      (sensor.anomalyKey === null && sensor.anomalyMore?.has(key) !== true);
    if (inline && program.slots.length === 1) {
      if (sensor.anomalyKey === null) {
        sensor.anomalyKey = key;
        sensor.anomalyState = null;
      }
      const before = sensor.anomalyState as SlotState;
      const after = program.observeOne(before, event, time);
      if (after !== before) sensor.anomalyState = after;
    } else {
      let state = _anomalyOf(sensor, key);
      if (state === undefined) _setAnomaly(sensor, key, state = program.newState());
      program.observe(state, event, time);
    }
    if (this.#changes !== null) this.#mark("anomaly", rule.rule.id, event.sensor_id);
    const verdict = rule.test(event);
    const open = verdict !== null || this.tracker.episode(rule.rule.id, event.sensor_id) !== undefined;
    if (!open) return;
    const cleared = verdict === null ? rule.clears(event) : false;
    const sample = eventSample(event, time);
    const explained = program.explain(used);
    if (explained.length > 0) {
      const { baseline, deviation, score } = explained[0]!;
      sample.values = { baseline, deviation, score };
      sample.anomaly = explained;
    }
    this.#observeSample(rule, sample, verdict, verdict === null && cleared, out);
  }

  #observeWindow(rule: CompiledRule, event: SensorEvent, time: number, out: EngineOutput): void {
    const w = this.#windows.get(rule.rule.id)!.state;
    const closed: ClosedWindow[] = [];
    const lateBefore = w.late;
    if (!w.add(event, time, this.#clock, closed)) return;
    if (this.#changes !== null) this.#mark("window", rule.rule.id, rule.window!.groupOf(event)!);
    this.lateEvents += w.late - lateBefore;
    for (const c of closed) this.#onClosed(rule, c, out);
    const due = w.nextDue();
    if (due < this.#due) this.#due = due;
  }

  #onClosed(rule: CompiledRule, c: ClosedWindow, out: EngineOutput): void {
    const spec = rule.window!;
    this.#mark("window", rule.rule.id, c.group);
    if (spec.publish) {
      out.aggregates.push({
        sensor_id: c.sensor_id,
        sensor_type: c.sensor_type,
        avg_value: c.aggregate.avg as number,
        min_value: c.aggregate.min as number,
        max_value: c.aggregate.max as number,
        count: c.aggregate.count as number,
        window_start: c.aggregate.window_start as string,
        window_end: c.aggregate.window_end as string,
        unit: c.unit,
        rule_id: rule.rule.id,
        group: c.group,
        ...Object.fromEntries([...spec.functions].map((f) => [f, c.aggregate[f]])),
        // Beside p95 when a quantile sketch gave it (within 1%) rather than the exact nearest rank.
        ...(c.aggregate.p95_estimated === true ? { p95_estimated: true } : {}),
      });
    }
    const verdict = rule.test(c.aggregate);
    const cleared = verdict === null && rule.clears(c.aggregate);
    const value = c.aggregate[spec.valueOf];
    // Only a changed episode goes to the changelog: a closed window that raised nothing wrote a
    // tombstone of an episode that never was, once per group and window.
    const changed = this.tracker.observe(
      rule,
      {
        group: c.group,
        time: c.end,
        sensor_id: c.sensor_id,
        sensor_type: c.sensor_type,
        unit: c.unit,
        location: c.location,
        value: typeof value === "number" && Number.isFinite(value) ? value : 0,
        event: null,
        values: c.aggregate,
      },
      verdict,
      cleared,
      out.alerts,
    );
    if (changed) this.#mark("episode", rule.rule.id, c.group);
    this.#watch(rule, c.group);
  }

  #observeDeadman(rule: CompiledRule, event: SensorEvent, time: number, out: EngineOutput): void {
    const d = this.#deadman.get(rule.rule.id)!.state;
    let seen = d.sensors.get(event.sensor_id);
    const lastBefore = seen?.last;
    const neverBefore = seen?.never === true;
    if (seen === undefined || seen.never) {
      seen = _seen(event.sensor_id, time, event.sensor_type, event.unit, event.location ?? null, false);
      seen.saved = time;
      d.put(seen);
      this.#mark("deadman", rule.rule.id, event.sensor_id);
    } else if (time > seen.last) {
      seen.last = time;
      // A timer recorded a quarter of `absent_for` late only makes a silence after a restart look a
      // little longer, and the startup grace covers that; recording every event would write one
      // changelog record per sensor per batch.
      if (seen.saved === undefined || time - seen.saved >= rule.absentForMs! / 4) {
        seen.saved = time;
        this.#mark("deadman", rule.rule.id, event.sensor_id);
      }
    }
    const deadline = time + rule.absentForMs!;
    if (deadline < this.#due) this.#due = deadline;
    // Data is back (newer than the last seen, not a delayed old event): a firing deadman episode
    // resolves at once, with how long the silence lasted.
    const news = lastBefore === undefined || neverBefore || time > lastBefore;
    // The sensor is next due at its new deadline. Moved now rather than when its old deadline comes:
    // the clock must look when the walk of every sensor this replaced did, at the earliest deadline,
    // as a look advances window rules' watermarks, which checkpoints write (a queue moved on lazily
    // looked at other times, and wrote other watermarks, in tests/rules/deadman_queue_differential_test.ts).
    if (news && !d.stale) d.queue.set(seen, deadline);
    if (news && this.tracker.episode(rule.rule.id, event.sensor_id) !== undefined) {
      this.#mark("episode", rule.rule.id, event.sensor_id);
      const sample = lastBefore === undefined ? eventSample(event, time) : silenceSample(event.sensor_id, {
        last: lastBefore,
        sensor_type: event.sensor_type,
        unit: event.unit,
        location: event.location ?? null,
        never: neverBefore,
      }, time);
      this.tracker.observe(rule, sample, null, true, out.alerts);
      this.#watch(rule, event.sensor_id);
    }
  }

  /**
   * When the clock must next look at a sensor of a deadman rule past its deadline: when its alert has
   * something to do (fire after `for`, repeat), or Infinity when nothing will until it speaks. What the
   * walk of every sensor at every look this replaced found for it after looking; a look before this
   * time would change nothing.
   */
  #again(rule: CompiledRule, seen: Seen): number {
    const ep = this.tracker.episode(rule.rule.id, seen.id);
    if (ep === undefined) return Infinity;
    if (ep.phase === "pending") return ep.since + rule.forMs;
    if (rule.repeatMs !== null && !ep.acknowledged && ep.last_notified !== null) {
      return ep.last_notified + rule.repeatMs;
    }
    return Infinity;
  }

  /** Partial sequence matches held now, over every rule (for metrics and tests). */
  get sequenceOpen(): number {
    let n = 0;
    for (const q of this.#sequences.values()) n += q.state.open;
    return n;
  }

  /**
   * A sequence rule's event: B completes (A then B) or cancels (A not followed by B) the partial
   * matches of its group; A starts one. B is looked at first, so one event can end a match and
   * start the next. Deadlines that the event's own time has passed are settled before it counts as a
   * B, so a late B after a deadline resolves the alert rather than hiding it.
   */
  #observeSequence(rule: CompiledRule, event: SensorEvent, time: number, out: EngineOutput): void {
    const spec = rule.sequence!;
    const isThen = spec.then(event);
    const isFirst = spec.first(event);
    if (!isThen && !isFirst) return;
    const group = spec.groupOf(event);
    if (group === null) return;
    const q = this.#sequences.get(rule.rule.id)!.state;
    const g = q.group(group);
    this.#mark("sequence", rule.rule.id, group);
    if (isThen) {
      if (spec.negated) {
        this.#settleGroup(rule, group, g, time, out);
        keepPending(g, (p) => p.t > time);
        if (this.tracker.episode(rule.rule.id, group) !== undefined) {
          this.#mark("episode", rule.rule.id, group);
          this.tracker.observe(rule, { ...eventSample(event, time), group }, null, true, out.alerts);
        }
      } else {
        const i = g.open.findIndex((p) => p.t <= time && time <= p.t + spec.withinMs);
        if (i >= 0) {
          const a = takePending(g, i);
          g.matched_at = time;
          this.#mark("episode", rule.rule.id, group);
          const sample: Sample = {
            ...eventSample(event, time),
            group,
            values: firstValues(a, spec.withinMs),
          };
          this.tracker.observe(rule, sample, NO_VERDICT, false, out.alerts);
        }
      }
    }
    if (isFirst) {
      // Out-of-order A events keep the list in time order (it is oldest first).
      this.sequenceDropped += addPending(g, {
        t: time,
        sensor_id: event.sensor_id,
        sensor_type: event.sensor_type,
        unit: event.unit,
        location: event.location ?? null,
        value: event.value,
        event_id: event.event_id,
      }, spec.maxOpen);
      const deadline = time + spec.withinMs;
      if (deadline < this.#due) this.#due = deadline;
    }
    q.tidy(group, g);
  }

  /**
   * At `now`: A-then-B partial matches past `within` are dropped, A-then-B alerts resolve `within`
   * after their last match, and an A not followed by B fires at its deadline. Returns when the rule
   * next needs a look.
   */
  #checkSequence(rule: CompiledRule, now: number, out: EngineOutput): number {
    const q = this.#sequences.get(rule.rule.id)!.state;
    const within = rule.sequence!.withinMs;
    let next = Infinity;
    for (const [group, g] of q.groups) {
      const before = g.open.length;
      const matched = g.matched_at;
      this.#settleGroup(rule, group, g, now, out);
      if (g.open.length !== before || g.matched_at !== matched) this.#mark("sequence", rule.rule.id, group);
      const first = g.open[0];
      if (first !== undefined && first.t + within < next) next = first.t + within;
      if (g.matched_at !== null && g.matched_at + within < next) next = g.matched_at + within;
      q.tidy(group, g);
    }
    return next;
  }

  #settleGroup(rule: CompiledRule, group: string, g: SequenceGroup, now: number, out: EngineOutput): void {
    const spec = rule.sequence!;
    const within = spec.withinMs;
    if (spec.negated) {
      let missed: Pending | undefined;
      while (g.open.length > 0 && g.open[0]!.t + within <= now) {
        const p = dropOldest(g)!;
        missed ??= p;
      }
      if (missed !== undefined) {
        this.#mark("episode", rule.rule.id, group);
        this.tracker.observe(
          rule,
          pendingSample(missed, group, missed.t + within, within),
          NO_VERDICT,
          false,
          out.alerts,
        );
      }
      return;
    }
    while (g.open.length > 0 && g.open[0]!.t + within < now) {
      dropOldest(g);
      this.sequenceExpired++;
    }
    if (g.matched_at !== null && g.matched_at + within <= now) {
      const ep = this.tracker.episode(rule.rule.id, group);
      const at = g.matched_at + within;
      g.matched_at = null;
      if (ep?.alert != null) {
        this.#mark("episode", rule.rule.id, group);
        const a = ep.alert;
        this.tracker.observe(
          rule,
          {
            group,
            time: at,
            sensor_id: a.sensor_id,
            sensor_type: a.sensor_type,
            unit: a.unit ?? "",
            location: a.location ?? null,
            value: a.value,
            event: null,
            values: {},
          },
          null,
          true,
          out.alerts,
        );
      }
    }
  }

  /**
   * Fires and repeats the deadman alerts due at `now`; returns when this rule next needs a look. Looks
   * only at the sensors due: the walk of every sensor it replaced held the event loop 91 ms per look at
   * 100,000 sensors, 90,000 of them silent and firing (scripts/bench/deadman_tick.ts).
   */
  #checkDeadman(rule: CompiledRule, now: number, out: EngineOutput): number {
    const entry = this.#deadman.get(rule.rule.id)!;
    const d = entry.state;
    const absentFor = rule.absentForMs!;
    if (this.#startedAt === null) return Infinity;
    // Sensors named exactly but never seen count from the start (or from when the rule was loaded).
    if (rule.sensorIds !== null && !d.listed) {
      const type = rule.sensorTypes!.values().next().value as SensorType;
      for (const id of rule.sensorIds) {
        if (!d.sensors.has(id)) {
          this.#mark("deadman", rule.rule.id, id);
          const seen = _seen(id, Math.max(this.#startedAt, entry.since), type, "", null, true);
          d.put(seen);
          if (!d.stale) d.queue.set(seen, seen.last + absentFor);
        }
      }
      d.listed = true;
    }
    // After a restart every sensor looks silent until it speaks again: give them a grace period.
    const graceEnd = this.#startedAt + rule.startupGraceMs;
    if (now < graceEnd) return graceEnd;
    if (this.#deadmanWalk) return this.#walkDeadman(rule, d, now, out);
    const q = d.queue;
    if (d.stale) {
      // Every sensor at its deadline: those past it are looked at now, as the walk did.
      for (const seen of d.sensors.values()) seen.due = seen.last + absentFor;
      q.reset(d.sensors.values());
      d.stale = false;
    }
    const due: Seen[] = [];
    for (let seen = q.peek(); seen !== undefined && seen.due <= now; seen = q.peek()) {
      q.pop();
      due.push(seen);
    }
    // In the order of the walk it replaced, so the alerts of one look come out in the same order.
    if (due.length > 1) due.sort((a, b) => a.order - b.order);
    // Out of the queue until handled: an error halfway (the clock reports it and looks again a second
    // later) leaves the queue to be built anew from every sensor, or the rest were never looked at
    // again until they spoke (tests/rules/engine_deadman_due_test.ts).
    d.stale = true;
    for (const seen of due) {
      const deadline = seen.last + absentFor;
      if (now < deadline) {
        q.set(seen, deadline);
        continue;
      }
      // Only a changed episode goes to the changelog: the walk wrote every silent sensor's again at
      // every look (90,000 records a look of the bench's outage).
      if (this.tracker.observe(rule, silenceSample(seen.id, seen, now), NO_VERDICT, false, out.alerts)) {
        this.#mark("episode", rule.rule.id, seen.id);
      }
      const again = this.#again(rule, seen);
      if (again < Infinity) q.set(seen, again);
    }
    d.stale = false;
    // An acknowledgement, an escalation or a flap that settled moved a repeat later than where its
    // sensor is queued: queued again, so the next look is when the walk would have found it.
    for (let seen = q.peek(); seen !== undefined && seen.due > now; seen = q.peek()) {
      if (now < seen.last + absentFor) break;
      const again = this.#again(rule, seen);
      if (again === seen.due) break;
      if (again === Infinity) q.delete(seen);
      else q.set(seen, again);
    }
    return q.peek()?.due ?? Infinity;
  }

  /** `#checkDeadman` as it was: every sensor at every look (the `deadmanWalk` reference). */
  #walkDeadman(rule: CompiledRule, d: DeadmanState, now: number, out: EngineOutput): number {
    // The queue is not kept meanwhile: built anew if the engine ever looked the other way.
    d.stale = true;
    let next = Infinity;
    for (const seen of d.sensors.values()) {
      const deadline = seen.last + rule.absentForMs!;
      if (now < deadline) {
        if (deadline < next) next = deadline;
        continue;
      }
      this.#mark("episode", rule.rule.id, seen.id);
      this.tracker.observe(rule, silenceSample(seen.id, seen, now), NO_VERDICT, false, out.alerts);
      const again = this.#again(rule, seen);
      if (again < next) next = again;
    }
    return next;
  }
}

/** A deadman observation: `value` and `absent_for` are the silence so far, in seconds. */
function silenceSample(sensorId: string, seen: Omit<DeadmanTimer, "rule_hash">, now: number): Sample {
  const seconds = (now - seen.last) / 1000;
  return {
    group: sensorId,
    time: now,
    sensor_id: sensorId,
    sensor_type: seen.sensor_type,
    unit: seen.unit,
    location: seen.location,
    value: seconds,
    event: null,
    values: {
      absent_for: `${Math.round(seconds)}s`,
      last_seen: seen.never ? "never" : new Date(seen.last).toISOString(),
    },
  };
}

/** Template values about a sequence's A event. */
function firstValues(a: Pending, withinMs: number): Sample["values"] {
  return {
    first_sensor_id: a.sensor_id,
    first_value: a.value,
    first_at: new Date(a.t).toISOString(),
    first_event_id: a.event_id,
    within: `${withinMs / 1000}s`,
  };
}

/** A not followed by B: the alert is about A, at its deadline. */
function pendingSample(a: Pending, group: string, time: number, withinMs: number): Sample {
  return {
    group,
    time,
    sensor_id: a.sensor_id,
    sensor_type: a.sensor_type,
    unit: a.unit,
    location: a.location,
    value: a.value,
    event: null,
    values: firstValues(a, withinMs),
  };
}

function eventSample(event: SensorEvent, time: number): Sample {
  return {
    group: event.sensor_id,
    time,
    sensor_id: event.sensor_id,
    sensor_type: event.sensor_type,
    unit: event.unit,
    location: event.location ?? null,
    value: event.value,
    event,
    values: {},
  };
}

/** The newest event time a piece of restored state speaks of (-Infinity: none). */
function _newestTime(e: StateChange): number {
  const times: (number | null | undefined)[] = [];
  if (e.kind === "deadman") times.push(e.value?.last);
  else if (e.kind === "window") times.push(e.value?.watermark, e.value?.time);
  else if (e.kind === "episode") times.push(e.value?.since);
  let newest = -Infinity;
  for (const t of times) if (typeof t === "number" && Number.isFinite(t) && t > newest) newest = t;
  return newest;
}
