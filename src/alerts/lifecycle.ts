import type { RuleKind, Verdict } from "../contract/records.ts";
import type {
  Priority,
  RaisedAlertFields,
  SensorAlert,
  SensorEvent,
  SensorType,
} from "../contract/schemas.ts";
import { alertId } from "./alert_id.ts";
import { escalationDue, FlapTracker } from "./noise.ts";

/** Values for a rule's message template: the rule's template fields, and `metadata.<key>`. */
export type MessageValues = { [field: string]: unknown; metadata?: Record<string, unknown> };

/**
 * What the lifecycle reads of a rule; a compiled rule (`CompiledRule`, src/rules/compile.ts) is one.
 * Declared here rather than imported: the rules engine drives the lifecycle, so alerts/ lies below
 * rules/ and never imports it (tests/contract/layers_test.ts).
 */
export interface AlertingRule {
  readonly rule: {
    readonly id: string;
    readonly priority: Priority;
    readonly description: string;
    readonly labels: Record<string, string>;
    readonly threshold?: { min?: number | undefined; max?: number | undefined } | undefined;
    readonly notify_resolved: boolean;
    readonly enabled: boolean;
  };
  readonly kind: RuleKind;
  /** See `CompiledRule.stateHash`: an episode carries over a reload only while it is the same. */
  readonly stateHash: string;
  readonly forMs: number;
  readonly clearForMs: number;
  readonly repeatMs: number | null;
  readonly message: (values: MessageValues) => string;
  /** Escalation steps, earliest first (see src/alerts/noise.ts). */
  readonly escalate?: readonly { afterMs: number; priority: Priority }[];
  /** Flap detection (see src/alerts/noise.ts). */
  readonly flapping?: { windowMs: number; maxTransitions: number } | null;
}

/** The rules in force, by id (a `RuleSet` is one). */
export interface AlertingRules {
  readonly byId: ReadonlyMap<string, AlertingRule>;
}

/** What a rule observed for one group at one (event) time: an event, a closed window, or an absence. */
export interface Sample {
  group: string;
  time: number;
  sensor_id: string;
  sensor_type: SensorType;
  unit: string;
  location: string | null;
  value: number;
  /** The triggering event, for event rules. */
  event: SensorEvent | null;
  /** Extra template values (aggregates, deadman facts). */
  values: MessageValues;
  /** Why an anomaly operation judged the event as it did (event rules that use one). */
  anomaly?: RaisedAlertFields["anomaly"];
}

export type Phase = "pending" | "firing" | "clearing";

/** One alert episode of a rule for one group: from the first firing to resolution. Plain data. */
export interface Episode {
  alert_id: string;
  rule_id: string;
  /** The rule's `stateHash` when the episode began (or was carried over a reload). */
  rule_hash: string;
  group: string;
  phase: Phase;
  /** Event time the current phase started (pending: condition first held; clearing: clear first held). */
  since: number;
  fired_at: number | null;
  last_notified: number | null;
  repeats: number;
  acknowledged: boolean;
  verdict: Verdict;
  /** The newest alert published for this episode (null while pending). */
  alert: SensorAlert | null;
  /** Escalation steps taken (absent in changelogs written before escalation: none). */
  escalation?: number;
}

/**
 * The alert lifecycle per rule × group: inactive → pending (`for`) → firing → clearing (`clear_for`)
 * → resolved. One firing alert and one resolved notice per episode, repeats every `repeat_interval`
 * unless acknowledged; repeats and the resolved notice reuse the episode's `alert_id`.
 */
export class AlertTracker {
  /** Recent transitions per rule × group, for flap detection; outlives the episodes it counts. */
  readonly flaps = new FlapTracker();
  readonly #episodes = new Map<string, Episode>();
  /** The same episodes by rule, then group: `episode()` runs for most events and must not build a key. */
  readonly #byRule = new Map<string, Map<string, Episode>>();

  /**
   * Feeds one observation. `verdict` is non-null when the condition holds; `cleared` says whether
   * the clear condition holds (by default: the condition does not). Alerts to publish go to `out`.
   * Returns whether the episode changed: begun, ended, or any of its fields (what a checkpoint writes).
   */
  observe(
    rule: AlertingRule,
    s: Sample,
    verdict: Verdict | null,
    cleared: boolean,
    out: SensorAlert[],
  ): boolean {
    // Found without building the map key: most calls change nothing (an open episode's sensor
    // reports again), and the key is only needed to add or remove the episode.
    let ep = this.episode(rule.rule.id, s.group);
    let created = false;
    if (ep === undefined) {
      if (verdict === null) return false;
      ep = {
        alert_id: alertId(rule.rule.id, s.group, s.event?.event_id ?? String(s.time)),
        rule_id: rule.rule.id,
        rule_hash: rule.stateHash,
        group: s.group,
        phase: "pending",
        since: s.time,
        fired_at: null,
        last_notified: null,
        repeats: 0,
        acknowledged: false,
        verdict,
        alert: null,
      };
      this.#put(`${rule.rule.id}\u0000${s.group}`, ep);
      created = true;
    } else {
      // Times within an episode never go backwards: an observation stamped before the episode's
      // newest time (a late event, a sensor whose data comes back delayed) counts as at that time.
      const newest = Math.max(ep.since, ep.fired_at ?? -Infinity, ep.last_notified ?? -Infinity);
      if (s.time < newest) s = { ...s, time: newest };
    }
    switch (ep.phase) {
      case "pending":
        if (verdict === null) {
          this.#drop(`${ep.rule_id}\u0000${ep.group}`, ep);
          return true;
        } else if (s.time - ep.since >= rule.forMs) {
          this.#fire(rule, ep, s, verdict, out);
          return true;
        }
        return created;
      case "firing":
        if (cleared) {
          ep.phase = "clearing";
          ep.since = s.time;
          if (rule.clearForMs === 0) this.#resolve(rule, `${ep.rule_id}\u0000${ep.group}`, ep, s, out);
          return true;
        }
        return this.#maybeRepeat(rule, ep, s, verdict, out);
      case "clearing":
        if (!cleared) {
          ep.phase = "firing";
          this.#maybeRepeat(rule, ep, s, verdict, out);
          return true;
        } else if (s.time - ep.since >= rule.clearForMs) {
          this.#resolve(rule, `${ep.rule_id}\u0000${ep.group}`, ep, s, out);
          return true;
        }
        return false;
    }
  }

  #fire(rule: AlertingRule, ep: Episode, s: Sample, verdict: Verdict, out: SensorAlert[]): void {
    ep.phase = "firing";
    ep.fired_at = s.time;
    ep.last_notified = s.time;
    ep.verdict = verdict;
    ep.alert = buildAlert(rule, s, verdict, ep, "firing");
    this.#transition(rule, ep, s.time, ep.alert, out);
  }

  /**
   * A firing or resolved transition: published, unless flap detection holds it back (src/alerts/noise.ts).
   * While the rule × group flaps, the episode's alert says so (the API shows it).
   */
  #transition(rule: AlertingRule, ep: Episode, time: number, alert: SensorAlert, out: SensorAlert[]): void {
    if (!rule.flapping) {
      out.push(alert);
      return;
    }
    const held = this.flaps.transition(rule.flapping, rule.stateHash, ep, time, alert, out);
    if (held && ep.alert !== null && alert.state === "firing") ep.alert = { ...ep.alert, flapping: true };
  }

  #maybeRepeat(
    rule: AlertingRule,
    ep: Episode,
    s: Sample,
    verdict: Verdict | null,
    out: SensorAlert[],
  ): boolean {
    if (rule.repeatMs === null || ep.acknowledged || ep.last_notified === null) return false;
    if (s.time - ep.last_notified < rule.repeatMs) return false;
    // A flapping alert is not notified again until it is stable.
    if (rule.flapping && this.flaps.isFlapping(ep.rule_id, ep.group)) return false;
    ep.repeats++;
    ep.last_notified = s.time;
    if (verdict !== null) ep.verdict = verdict;
    ep.alert = buildAlert(rule, s, ep.verdict, ep, "firing");
    out.push(ep.alert);
    return true;
  }

  #put(key: string, ep: Episode): void {
    this.#episodes.set(key, ep);
    let groups = this.#byRule.get(ep.rule_id);
    if (groups === undefined) this.#byRule.set(ep.rule_id, groups = new Map());
    groups.set(ep.group, ep);
  }

  #drop(key: string, ep: Episode): void {
    this.#episodes.delete(key);
    const groups = this.#byRule.get(ep.rule_id);
    groups?.delete(ep.group);
    if (groups?.size === 0) this.#byRule.delete(ep.rule_id);
  }

  #resolve(rule: AlertingRule, key: string, ep: Episode, s: Sample, out: SensorAlert[]): void {
    this.#drop(key, ep);
    const alert = buildAlert(rule, s, ep.verdict, ep, "resolved");
    if (!rule.rule.notify_resolved) {
      // Not notified, but still a transition flap detection counts (and the state it settles in).
      if (rule.flapping) this.flaps.transition(rule.flapping, rule.stateHash, ep, s.time, alert, []);
      return;
    }
    this.#transition(rule, ep, s.time, alert, out);
  }

  /**
   * Ends the rule's flap states that have been stable for the window at `now`: each that flapped gets
   * one notice of its current state (firing, or resolved), stamped when it became stable. Returns when
   * the rule next needs a look.
   */
  settleFlaps(
    rule: AlertingRule,
    now: number,
    out: SensorAlert[],
    changed: (group: string) => void,
  ): number {
    if (!rule.flapping) return Infinity;
    return this.flaps.settle(rule.rule.id, rule.flapping, now, (group, f, at) => {
      // Under the id consumers last saw firing (the flapping notice's): it resolves, or goes on as the
      // current episode.
      const id = f.open_id ?? f.last.alert_id;
      const stamp = {
        alert_id: id,
        flapping: false,
        timestamp: new Date(at).toISOString(),
        raised_at: new Date().toISOString(),
      };
      if (f.last.state === "resolved") {
        out.push({ ...f.last, ...stamp });
        return;
      }
      const ep = this.episode(rule.rule.id, group);
      // The episode ended some other way meanwhile (a reload, a partition change), with its own notice.
      if (ep?.alert == null || ep.alert_id !== f.last.alert_id) return;
      const { ack_update: _, ...last } = ep.alert;
      ep.alert_id = id;
      ep.alert = { ...last, ...stamp };
      ep.last_notified = Math.max(ep.last_notified ?? at, at);
      out.push(ep.alert);
    }, changed);
  }

  /**
   * Raises the priority of the rule's firing, unacknowledged episodes whose next escalation step is
   * due at `now` (event time): one notice per episode, with the highest step due, stamped when that
   * step fell due. Returns when the rule next needs a look (Infinity: nothing to escalate).
   */
  escalate(rule: AlertingRule, now: number, out: SensorAlert[], changed: (ep: Episode) => void): number {
    const steps = rule.escalate ?? [];
    if (steps.length === 0) return Infinity;
    let next = Infinity;
    for (const ep of this.#byRule.get(rule.rule.id)?.values() ?? []) {
      const due = escalationDue(steps, ep);
      if (due > now) {
        next = Math.min(next, due);
        continue;
      }
      // A flapping alert waits: it escalates once stable, if still due then.
      if (rule.flapping && this.flaps.isFlapping(ep.rule_id, ep.group)) continue;
      let level = ep.escalation ?? 0;
      while (level < steps.length && ep.fired_at! + steps[level]!.afterMs <= now) level++;
      const step = steps[level - 1]!;
      const at = Math.max(ep.fired_at! + step.afterMs, ep.since, ep.last_notified ?? -Infinity);
      ep.escalation = level;
      ep.last_notified = at;
      const { ack_update: _, ...last } = ep.alert!;
      ep.alert = {
        ...last,
        priority: step.priority,
        escalation: level,
        timestamp: new Date(at).toISOString(),
        raised_at: new Date().toISOString(),
      };
      out.push(ep.alert);
      changed(ep);
      next = Math.min(next, escalationDue(steps, ep));
    }
    return next;
  }

  /**
   * Marks the open episode with this alert id acknowledged: it will not be re-notified. Returns the
   * updated alert to publish (`acknowledged: true`), or null when no firing episode has that id.
   */
  acknowledge(alertId: string, by = "api"): SensorAlert | null {
    for (const ep of this.#episodes.values()) {
      if (ep.alert_id !== alertId || ep.alert === null) continue;
      if (ep.acknowledged) return ep.alert;
      ep.acknowledged = true;
      ep.alert = {
        ...ep.alert,
        acknowledged: true,
        ack_update: true,
        acknowledged_by: by,
        acknowledged_at: new Date().toISOString(),
      };
      return ep.alert;
    }
    return null;
  }

  /** Puts back an episode read from the state changelog. */
  restore(ep: Episode): void {
    this.#put(`${ep.rule_id}\u0000${ep.group}`, ep);
  }

  /** Forgets an episode (the changelog says it ended). */
  forget(ruleId: string, group: string): void {
    const ep = this.episode(ruleId, group);
    if (ep !== undefined) this.#drop(`${ruleId}\u0000${group}`, ep);
  }

  /**
   * After a reload: episodes of rules whose `stateHash` is unchanged carry over; the others end.
   * An ended episode that had fired gets a resolved notice saying why ("rule changed", "rule removed",
   * "rule disabled"), stamped `at` (the engine's clock) or its own newest time if later.
   */
  carryOver(ruleSet: AlertingRules, at: number, out: SensorAlert[]): number {
    let ended = 0;
    for (const [key, ep] of this.#episodes) {
      const rule = ruleSet.byId.get(ep.rule_id);
      if (rule !== undefined && rule.rule.enabled && rule.stateHash === ep.rule_hash) continue;
      this.#drop(key, ep);
      ended++;
      const notice = endedNotice(ep, ruleSet, at);
      if (notice !== null) out.push(notice);
    }
    return ended;
  }

  /**
   * Ends the episodes `leaves` picks, whatever their rule: each that had fired gets a resolved notice
   * saying `reason`, stamped `at` or its own newest time if later. Returns the ended episodes.
   */
  endWhere(leaves: (ep: Episode) => boolean, reason: string, at: number, out: SensorAlert[]): Episode[] {
    const ended: Episode[] = [];
    for (const [key, ep] of this.#episodes) {
      if (!leaves(ep)) continue;
      this.#drop(key, ep);
      ended.push(ep);
      const notice = noticeOfEnd(ep, reason, at);
      if (notice !== null) out.push(notice);
    }
    return ended;
  }

  /** Every episode, pending ones included (for checkpoints). */
  all(): Episode[] {
    return [...this.#episodes.values()];
  }

  /** The rule × groups whose notifications flap detection holds back now. */
  flapping(): { rule_id: string; group: string; since: number }[] {
    return this.flaps.flapping();
  }

  /** Episodes that have fired and not resolved (pending ones are not alerts yet). */
  active(): Episode[] {
    return [...this.#episodes.values()].filter((e) => e.phase !== "pending");
  }

  episode(ruleId: string, group: string): Episode | undefined {
    return this.#byRule.get(ruleId)?.get(group);
  }

  /** Number of firing (or clearing) episodes. */
  get size(): number {
    let n = 0;
    for (const e of this.#episodes.values()) if (e.phase !== "pending") n++;
    return n;
  }
}

/**
 * The resolved notice of an episode that ended with its rule (changed, removed or disabled), stamped
 * `at` or the episode's newest time if later; null when it never fired (nothing to resolve).
 */
export function endedNotice(ep: Episode, ruleSet: AlertingRules, at: number): SensorAlert | null {
  const rule = ruleSet.byId.get(ep.rule_id);
  return noticeOfEnd(
    ep,
    rule === undefined ? "rule removed" : rule.rule.enabled ? "rule changed" : "rule disabled",
    at,
  );
}

/** The resolved notice of an episode ended for `reason`; null when it never fired. */
function noticeOfEnd(ep: Episode, reason: string, at: number): SensorAlert | null {
  if (ep.phase === "pending" || ep.alert === null) return null;
  const time = Math.max(at, ep.since, ep.fired_at ?? -Infinity, ep.last_notified ?? -Infinity);
  const { ack_update: _, ...last } = ep.alert;
  return {
    ...last,
    state: "resolved",
    message: `Resolved (${reason}): ${last.message}`,
    timestamp: new Date(Number.isFinite(time) ? time : Date.now()).toISOString(),
    resolved_reason: reason,
    raised_at: new Date().toISOString(),
  };
}

export function buildAlert(
  rule: AlertingRule,
  s: Sample,
  verdict: Verdict,
  ep: Episode,
  state: "firing" | "resolved",
): SensorAlert {
  const r = rule.rule;
  const level = ep.escalation ?? 0;
  const priority = level > 0 ? rule.escalate?.[level - 1]?.priority ?? r.priority : r.priority;
  const values: MessageValues = {
    sensor_id: s.sensor_id,
    sensor_type: s.sensor_type,
    value: s.value,
    unit: s.unit,
    threshold: verdict.threshold,
    location: s.location,
    rule_id: r.id,
    priority,
    crossed: crossedText(rule, verdict, state),
    event_id: s.event?.event_id ?? null,
    timestamp: new Date(s.time).toISOString(),
    state,
    group: s.group,
    ...s.values,
  };
  if (s.event !== null) values.metadata = s.event.metadata;
  const text = rule.message(values);
  // A window alert's key is its group's: every notice of an episode keeps the sensor it fired with.
  const keep = (rule.kind === "window" || rule.kind === "sequence") && ep.alert !== null;
  const alert: SensorAlert = {
    alert_id: ep.alert_id,
    sensor_id: keep ? ep.alert!.sensor_id : s.sensor_id,
    sensor_type: keep ? ep.alert!.sensor_type : s.sensor_type,
    priority,
    message: state === "resolved" ? `Resolved: ${text}` : text,
    value: s.value,
    threshold: verdict.threshold,
    timestamp: new Date(s.time).toISOString(),
    acknowledged: ep.acknowledged,
    rule_id: r.id,
    state,
    location: s.location,
    unit: s.unit,
    labels: r.labels,
    description: r.description,
    kind: rule.kind,
    group: s.group,
    repeat: ep.repeats,
    fired_at: ep.fired_at === null ? null : new Date(ep.fired_at).toISOString(),
    raised_at: new Date().toISOString(),
  };
  if (s.event !== null) {
    alert.event_id = s.event.event_id;
    alert.event = s.event;
  }
  if (rule.kind === "window") alert.aggregate = s.values;
  if ((rule.escalate?.length ?? 0) > 0) alert.escalation = level;
  if (s.anomaly !== undefined) alert.anomaly = s.anomaly;
  if (verdict.limits !== undefined) alert.limits = verdict.limits;
  return alert;
}

function crossedText(rule: AlertingRule, verdict: Verdict, state: "firing" | "resolved"): string {
  // A `limits:` rule's band is the sensor's, in its verdict.
  const l = verdict.limits;
  const t = rule.rule.threshold ??
    (l === undefined ? undefined : { min: l.min ?? undefined, max: l.max ?? undefined });
  if (t === undefined) return "";
  if (state === "resolved") {
    if (t.min !== undefined && t.max !== undefined) return `is back within ${t.min}..${t.max}`;
    return t.min !== undefined ? `is back above ${t.min}` : `is back below ${t.max}`;
  }
  return verdict.bound === "min"
    ? `is below the minimum threshold ${verdict.threshold}`
    : `exceeds the maximum threshold ${verdict.threshold}`;
}
