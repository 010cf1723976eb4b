import { AlertTracker, type Episode, type Sample } from "../alerts/lifecycle.ts";
import type { AggregatedSensorEvent, SensorAlert, SensorEvent, SensorType } from "../contract/schemas.ts";
import type { CompiledRule, Verdict } from "./compile.ts";
import type { RuleSet } from "./ruleset.ts";
import { type Acc, type ClosedWindow, WindowState } from "./windows.ts";

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

/** One piece of engine state, as the state changelog keeps it: `value` null means it is gone. */
export interface StateEntry {
  kind: "ep" | "win" | "dm";
  rule: string;
  group: string;
  value: unknown;
}

interface WindowEntry {
  rule_hash: string;
  watermark: number;
  accs: Acc[];
  count: Acc | null;
}

interface DeadmanEntry extends Seen {
  rule_hash: string;
}

interface Seen {
  last: number;
  sensor_type: SensorType;
  unit: string;
  location: string | null;
  /** `last` as the changelog last recorded it (checkpoints write deadman timers coarsely). */
  saved?: number;
}

/** Deadman state of one rule: when each matching sensor was last seen, by event time. */
class DeadmanState {
  readonly sensors = new Map<string, Seen>();
}

const NO_VERDICT: Verdict = { threshold: null, bound: null };

/**
 * Runs events through the rules: event rules test each event, window rules aggregate and test each
 * closed window, deadman rules watch for silence. All of it by event time, so a replay or a
 * `rules:test` in virtual time behaves like the live stream.
 *
 * The clock: the newest event time seen, moved on by wall-clock time while the stream is idle
 * (`tick`), so windows close and silent sensors are noticed even when nothing arrives.
 */
export class RuleEngine {
  readonly tracker = new AlertTracker();
  readonly #windows = new Map<string, { hash: string; state: WindowState }>();
  readonly #deadman = new Map<string, { hash: string; state: DeadmanState }>();
  #ruleSet: RuleSet | null = null;
  #maxEventTime = -Infinity;
  #wallAtMax = 0;
  #startedAt: number | null = null;
  lateEvents = 0;
  /** When state is checkpointed: what changed since the last `takeChanges()`, by kind, rule and group. */
  #dirty: Map<string, Map<string, Set<string>>> | null = null;

  /** Starts recording which state changes, for `takeChanges()`. */
  trackChanges(): void {
    this.#dirty ??= new Map([["ep", new Map()], ["win", new Map()], ["dm", new Map()]]);
  }

  #mark(kind: "ep" | "win" | "dm", rule: string, group: string): void {
    const byRule = this.#dirty?.get(kind);
    if (byRule === undefined) return;
    let groups = byRule.get(rule);
    if (groups === undefined) byRule.set(rule, groups = new Set());
    groups.add(group);
  }

  /** The current value of every piece of state that changed since the last call. */
  takeChanges(): StateEntry[] {
    if (this.#dirty === null) return [];
    const out: StateEntry[] = [];
    for (const [kind, byRule] of this.#dirty) {
      for (const [rule, groups] of byRule) {
        for (const group of groups) {
          out.push({ kind: kind as StateEntry["kind"], rule, group, value: this.#value(kind, rule, group) });
        }
        groups.clear();
      }
      byRule.clear();
    }
    return out;
  }

  /** Every piece of state, as `takeChanges()` would give it. */
  exportState(): StateEntry[] {
    const out: StateEntry[] = [];
    for (const ep of this.tracker.all()) {
      out.push({ kind: "ep", rule: ep.rule_id, group: ep.group, value: ep });
    }
    for (const [rule, w] of this.#windows) {
      for (const group of w.state.groups()) {
        out.push({ kind: "win", rule, group, value: this.#value("win", rule, group) });
      }
    }
    for (const [rule, d] of this.#deadman) {
      for (const group of d.state.sensors.keys()) {
        out.push({ kind: "dm", rule, group, value: this.#value("dm", rule, group) });
      }
    }
    return out;
  }

  #value(kind: string, rule: string, group: string): unknown {
    if (kind === "ep") return this.tracker.episode(rule, group) ?? null;
    if (kind === "win") {
      const w = this.#windows.get(rule);
      const data = w?.state.exportGroup(group);
      return w === undefined || data == null ? null : { rule_hash: w.hash, ...data } satisfies WindowEntry;
    }
    const d = this.#deadman.get(rule);
    const seen = d?.state.sensors.get(group);
    return d === undefined || seen === undefined
      ? null
      : { rule_hash: d.hash, ...seen } satisfies DeadmanEntry;
  }

  /**
   * Applies entries read back from the state changelog (newest last). State of rules that changed or
   * are gone since it was written is ignored, as a reload would have dropped it.
   */
  importState(entries: Iterable<StateEntry>): number {
    let applied = 0;
    for (const e of entries) {
      const rule = this.#ruleSet?.byId.get(e.rule);
      if (e.kind === "ep") {
        const ep = e.value as Episode | null;
        if (ep === null) this.tracker.forget(e.rule, e.group);
        else if (rule?.hash === ep.rule_hash) this.tracker.restore(ep);
        else continue;
      } else if (e.kind === "win") {
        const w = this.#windows.get(e.rule);
        const v = e.value as WindowEntry | null;
        if (w === undefined || (v !== null && v.rule_hash !== w.hash)) continue;
        w.state.dropGroup(e.group);
        if (v !== null) w.state.importGroup(e.group, v);
      } else {
        const d = this.#deadman.get(e.rule);
        const v = e.value as DeadmanEntry | null;
        if (d === undefined || (v !== null && v.rule_hash !== d.hash)) continue;
        if (v === null) d.state.sensors.delete(e.group);
        else {d.state.sensors.set(e.group, {
            last: v.last,
            sensor_type: v.sensor_type,
            unit: v.unit,
            location: v.location,
          });}
      }
      applied++;
    }
    return applied;
  }

  /** Acknowledges an open episode (see AlertTracker.acknowledge) and records the change. */
  acknowledge(alertId: string, by?: string): SensorAlert | null {
    const alert = this.tracker.acknowledge(alertId, by);
    if (alert !== null) this.#mark("ep", alert.rule_id, String(alert["group"] ?? alert.sensor_id));
    return alert;
  }

  /** Swaps the rule set between two events; unchanged rules keep their state, others start fresh. */
  setRules(ruleSet: RuleSet): { dropped: number } {
    if (ruleSet === this.#ruleSet) return { dropped: 0 };
    this.#ruleSet = ruleSet;
    let dropped = this.tracker.retain(ruleSet);
    for (const [id, w] of this.#windows) {
      if (ruleSet.byId.get(id)?.hash !== w.hash) {
        this.#windows.delete(id);
        dropped++;
      }
    }
    for (const [id, d] of this.#deadman) {
      if (ruleSet.byId.get(id)?.hash !== d.hash) {
        this.#deadman.delete(id);
        dropped++;
      }
    }
    for (const r of ruleSet.rules) {
      if (r.window !== null && !this.#windows.has(r.rule.id)) {
        this.#windows.set(r.rule.id, { hash: r.hash, state: new WindowState(r.window) });
      }
      if (r.kind === "deadman" && !this.#deadman.has(r.rule.id)) {
        this.#deadman.set(r.rule.id, { hash: r.hash, state: new DeadmanState() });
      }
    }
    return { dropped };
  }

  get ruleSet(): RuleSet | null {
    return this.#ruleSet;
  }

  /** The engine clock (event time), or -Infinity before the first event or tick. */
  now(): number {
    return this.#maxEventTime;
  }

  /** Evaluates one accepted event against every rule that can match it. */
  onEvent(event: SensorEvent, time: number, out: EngineOutput, wallNow = Date.now()): void {
    const ruleSet = this.#ruleSet;
    if (ruleSet === null) return;
    if (time > this.#maxEventTime) {
      this.#maxEventTime = time;
      this.#wallAtMax = wallNow;
    }
    this.#startedAt ??= time;
    for (const rule of ruleSet.candidates(event)) {
      try {
        if (!rule.selects(event)) continue;
        switch (rule.kind) {
          case "event":
            this.#observeEvent(rule, event, time, out);
            break;
          case "window":
            this.#observeWindow(rule, event, time, out);
            break;
          case "deadman":
            this.#observeDeadman(rule, event, time, out);
            break;
        }
      } catch (err) {
        out.errors.push({ rule, error: err instanceof Error ? err : new Error(String(err)) });
      }
    }
  }

  /**
   * Advances the clock by wall time elapsed since the newest event (or to `virtualNow` in virtual
   * time): closes windows, fires deadman alerts, re-notifies repeats of silent sensors.
   */
  tick(out: EngineOutput, wallNow = Date.now(), virtualNow?: number): void {
    const ruleSet = this.#ruleSet;
    if (ruleSet === null) return;
    let now: number;
    if (virtualNow !== undefined) {
      now = virtualNow;
      if (now > this.#maxEventTime) {
        this.#maxEventTime = now;
        this.#wallAtMax = wallNow;
      }
    } else {
      if (this.#maxEventTime === -Infinity) return;
      now = this.#maxEventTime + Math.max(0, wallNow - this.#wallAtMax);
    }
    this.#startedAt ??= now;
    for (const rule of ruleSet.rules) {
      try {
        if (rule.kind === "window") {
          const w = this.#windows.get(rule.rule.id)!.state;
          const closed: ClosedWindow[] = [];
          w.advance(now, closed);
          for (const c of closed) this.#onClosed(rule, c, out);
        } else if (rule.kind === "deadman") {
          this.#checkDeadman(rule, now, out);
        }
      } catch (err) {
        out.errors.push({ rule, error: err instanceof Error ? err : new Error(String(err)) });
      }
    }
  }

  /** Sensors a deadman rule watches, with when they were last seen (for the API). */
  deadmanSensors(ruleId: string): Map<string, Seen> | undefined {
    return this.#deadman.get(ruleId)?.state.sensors;
  }

  windowState(ruleId: string): WindowState | undefined {
    return this.#windows.get(ruleId)?.state;
  }

  #observeEvent(rule: CompiledRule, event: SensorEvent, time: number, out: EngineOutput): void {
    const verdict = rule.test(event);
    // The common case, nothing open and nothing firing, allocates nothing.
    if (verdict === null && this.tracker.episode(rule.rule.id, event.sensor_id) === undefined) return;
    const cleared = verdict === null ? rule.clears(event) : false;
    this.#mark("ep", rule.rule.id, event.sensor_id);
    this.tracker.observe(rule, eventSample(event, time), verdict, verdict === null && cleared, out.alerts);
  }

  #observeWindow(rule: CompiledRule, event: SensorEvent, time: number, out: EngineOutput): void {
    const w = this.#windows.get(rule.rule.id)!.state;
    const closed: ClosedWindow[] = [];
    const lateBefore = w.late;
    w.add(event, time, closed);
    if (this.#dirty !== null) this.#mark("win", rule.rule.id, rule.window!.groupOf(event));
    this.lateEvents += w.late - lateBefore;
    for (const c of closed) this.#onClosed(rule, c, out);
  }

  #onClosed(rule: CompiledRule, c: ClosedWindow, out: EngineOutput): void {
    const spec = rule.window!;
    this.#mark("win", rule.rule.id, c.group);
    this.#mark("ep", rule.rule.id, c.group);
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
      });
    }
    const verdict = rule.test(c.aggregate);
    const cleared = verdict === null && rule.clears(c.aggregate);
    const value = c.aggregate[spec.valueOf];
    this.tracker.observe(
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
  }

  #observeDeadman(rule: CompiledRule, event: SensorEvent, time: number, out: EngineOutput): void {
    const d = this.#deadman.get(rule.rule.id)!.state;
    const seen = d.sensors.get(event.sensor_id);
    if (seen === undefined) {
      d.sensors.set(event.sensor_id, {
        last: time,
        sensor_type: event.sensor_type,
        unit: event.unit,
        location: event.location ?? null,
        saved: time,
      });
      this.#mark("dm", rule.rule.id, event.sensor_id);
    } else if (time > seen.last) {
      seen.last = time;
      // A timer recorded a quarter of `absent_for` late only makes a silence after a restart look a
      // little longer, and the startup grace covers that; recording every event would write one
      // changelog record per sensor per batch.
      if (seen.saved === undefined || time - seen.saved >= rule.absentForMs! / 4) {
        seen.saved = time;
        this.#mark("dm", rule.rule.id, event.sensor_id);
      }
    }
    // Data is back: a firing deadman episode resolves at once.
    if (this.tracker.episode(rule.rule.id, event.sensor_id) !== undefined) {
      this.#mark("ep", rule.rule.id, event.sensor_id);
      this.tracker.observe(rule, eventSample(event, time), null, true, out.alerts);
    }
  }

  #checkDeadman(rule: CompiledRule, now: number, out: EngineOutput): void {
    const d = this.#deadman.get(rule.rule.id)!.state;
    const absentFor = rule.absentForMs!;
    // Sensors named exactly but never seen count from the engine's start.
    if (rule.sensorIds !== null && this.#startedAt !== null) {
      for (const id of rule.sensorIds) {
        if (!d.sensors.has(id)) {
          const type = rule.sensorTypes?.values().next().value ?? "temperature";
          this.#mark("dm", rule.rule.id, id);
          d.sensors.set(id, {
            last: this.#startedAt,
            sensor_type: type as SensorType,
            unit: "",
            location: null,
          });
        }
      }
    }
    // After a restart every sensor looks silent until it speaks again: give them a grace period.
    if (this.#startedAt === null || now - this.#startedAt < rule.startupGraceMs) return;
    for (const [sensorId, seen] of d.sensors) {
      const silent = now - seen.last >= absentFor;
      const open = this.tracker.episode(rule.rule.id, sensorId);
      if (!silent && open === undefined) continue;
      const sample: Sample = {
        group: sensorId,
        time: now,
        sensor_id: sensorId,
        sensor_type: seen.sensor_type,
        unit: seen.unit,
        location: seen.location,
        value: (now - seen.last) / 1000,
        event: null,
        values: {
          absent_for: `${Math.round((now - seen.last) / 1000)}s`,
          last_seen: seen.last === -Infinity ? "never" : new Date(seen.last).toISOString(),
        },
      };
      if (silent) {
        this.#mark("ep", rule.rule.id, sensorId);
        this.tracker.observe(rule, sample, NO_VERDICT, false, out.alerts);
      }
    }
  }
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
