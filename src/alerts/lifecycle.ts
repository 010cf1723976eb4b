import type { RuleKind, Verdict } from "../contract/records.ts";
import type {
  Priority,
  RaisedAlertFields,
  SensorAlert,
  SensorEvent,
  SensorType,
} from "../contract/schemas.ts";
import { alertId } from "./alert_id.ts";

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
}

/**
 * The alert lifecycle per rule × group: inactive → pending (`for`) → firing → clearing (`clear_for`)
 * → resolved. One firing alert and one resolved notice per episode, repeats every `repeat_interval`
 * unless acknowledged; repeats and the resolved notice reuse the episode's `alert_id`.
 */
export class AlertTracker {
  readonly #episodes = new Map<string, Episode>();
  /** The same episodes by rule, then group: `episode()` runs for most events and must not build a key. */
  readonly #byRule = new Map<string, Map<string, Episode>>();

  /**
   * Feeds one observation. `verdict` is non-null when the condition holds; `cleared` says whether
   * the clear condition holds (by default: the condition does not). Alerts to publish go to `out`.
   */
  observe(
    rule: AlertingRule,
    s: Sample,
    verdict: Verdict | null,
    cleared: boolean,
    out: SensorAlert[],
  ): void {
    const key = `${rule.rule.id}\u0000${s.group}`;
    let ep = this.#episodes.get(key);
    if (ep === undefined) {
      if (verdict === null) return;
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
      this.#put(key, ep);
    } else {
      // Times within an episode never go backwards: an observation stamped before the episode's
      // newest time (a late event, a sensor whose data comes back delayed) counts as at that time.
      const newest = Math.max(ep.since, ep.fired_at ?? -Infinity, ep.last_notified ?? -Infinity);
      if (s.time < newest) s = { ...s, time: newest };
    }
    switch (ep.phase) {
      case "pending":
        if (verdict === null) {
          this.#drop(key, ep);
        } else if (s.time - ep.since >= rule.forMs) {
          this.#fire(rule, ep, s, verdict, out);
        }
        return;
      case "firing":
        if (cleared) {
          ep.phase = "clearing";
          ep.since = s.time;
          if (rule.clearForMs === 0) this.#resolve(rule, key, ep, s, out);
          return;
        }
        this.#maybeRepeat(rule, ep, s, verdict, out);
        return;
      case "clearing":
        if (!cleared) {
          ep.phase = "firing";
          this.#maybeRepeat(rule, ep, s, verdict, out);
        } else if (s.time - ep.since >= rule.clearForMs) {
          this.#resolve(rule, key, ep, s, out);
        }
        return;
    }
  }

  #fire(rule: AlertingRule, ep: Episode, s: Sample, verdict: Verdict, out: SensorAlert[]): void {
    ep.phase = "firing";
    ep.fired_at = s.time;
    ep.last_notified = s.time;
    ep.verdict = verdict;
    ep.alert = buildAlert(rule, s, verdict, ep, "firing");
    out.push(ep.alert);
  }

  #maybeRepeat(
    rule: AlertingRule,
    ep: Episode,
    s: Sample,
    verdict: Verdict | null,
    out: SensorAlert[],
  ): void {
    if (rule.repeatMs === null || ep.acknowledged || ep.last_notified === null) return;
    if (s.time - ep.last_notified < rule.repeatMs) return;
    ep.repeats++;
    ep.last_notified = s.time;
    if (verdict !== null) ep.verdict = verdict;
    ep.alert = buildAlert(rule, s, ep.verdict, ep, "firing");
    out.push(ep.alert);
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
    if (!rule.rule.notify_resolved) return;
    out.push(buildAlert(rule, s, ep.verdict, ep, "resolved"));
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
  const values: MessageValues = {
    sensor_id: s.sensor_id,
    sensor_type: s.sensor_type,
    value: s.value,
    unit: s.unit,
    threshold: verdict.threshold,
    location: s.location,
    rule_id: r.id,
    priority: r.priority,
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
    priority: r.priority,
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
