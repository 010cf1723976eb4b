import type { SensorAlert, SensorEvent } from "../contract/schemas.ts";
import type { CompiledRule, Verdict } from "../rules/compile.ts";
import type { RuleSet } from "../rules/ruleset.ts";
import { alertId } from "./alert_id.ts";

/** One alert episode of a rule for one group (a sensor): from the first firing event to resolution. */
export interface Episode {
  alert_id: string;
  rule_id: string;
  rule_hash: string;
  group: string;
  started_at: number;
  acknowledged: boolean;
  /** The newest firing or resolved alert of this episode. */
  alert: SensorAlert;
}

/**
 * Turns per-event verdicts into alerts, one per episode: a sensor stuck out of range raises one
 * firing alert, and one resolved notice when it comes back.
 */
export class AlertTracker {
  readonly #episodes = new Map<string, Episode>();

  observe(rule: CompiledRule, event: SensorEvent, time: number, verdict: Verdict | null): SensorAlert | null {
    const key = `${rule.rule.id}\u0000${event.sensor_id}`;
    const episode = this.#episodes.get(key);
    if (verdict !== null) {
      if (episode !== undefined) return null;
      const id = alertId(rule.rule.id, event.sensor_id, event.event_id);
      const alert = buildAlert(rule, event, time, verdict, id, "firing", false);
      this.#episodes.set(key, {
        alert_id: id,
        rule_id: rule.rule.id,
        rule_hash: rule.hash,
        group: event.sensor_id,
        started_at: time,
        acknowledged: false,
        alert,
      });
      return alert;
    }
    if (episode === undefined) return null;
    this.#episodes.delete(key);
    if (!rule.rule.notify_resolved) return null;
    const last: Verdict = { threshold: episode.alert.threshold, bound: null };
    return buildAlert(rule, event, time, last, episode.alert_id, "resolved", episode.acknowledged);
  }

  /** After a reload: keep episodes of rules whose definition did not change, drop the rest. */
  retain(ruleSet: RuleSet): number {
    let dropped = 0;
    for (const [key, ep] of this.#episodes) {
      if (ruleSet.byId.get(ep.rule_id)?.hash !== ep.rule_hash) {
        this.#episodes.delete(key);
        dropped++;
      }
    }
    return dropped;
  }

  /**
   * Marks the open episode with this alert id acknowledged: it will not be re-notified. Returns the
   * updated alert to publish (`acknowledged: true`), or null when no open episode has that id.
   */
  acknowledge(alertId: string, by = "api"): SensorAlert | null {
    for (const ep of this.#episodes.values()) {
      if (ep.alert_id !== alertId) continue;
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

  active(): Episode[] {
    return [...this.#episodes.values()];
  }

  get size(): number {
    return this.#episodes.size;
  }
}

export function buildAlert(
  rule: CompiledRule,
  event: SensorEvent,
  time: number,
  verdict: Verdict,
  id: string,
  state: "firing" | "resolved",
  acknowledged: boolean,
): SensorAlert {
  const r = rule.rule;
  const values = {
    sensor_id: event.sensor_id,
    sensor_type: event.sensor_type,
    value: event.value,
    unit: event.unit,
    threshold: verdict.threshold,
    location: event.location ?? null,
    rule_id: r.id,
    priority: r.priority,
    crossed: crossedText(rule, verdict, state),
    event_id: event.event_id,
    timestamp: event.timestamp,
    state,
    metadata: event.metadata,
  };
  const text = rule.message(values);
  return {
    alert_id: id,
    sensor_id: event.sensor_id,
    sensor_type: event.sensor_type,
    priority: r.priority,
    message: state === "resolved" ? `Resolved: ${text}` : text,
    value: event.value,
    threshold: verdict.threshold,
    timestamp: new Date(time).toISOString(),
    acknowledged,
    rule_id: r.id,
    state,
    event_id: event.event_id,
    location: event.location ?? null,
    unit: event.unit,
    labels: r.labels,
    description: r.description,
    raised_at: new Date().toISOString(),
    event,
  };
}

function crossedText(rule: CompiledRule, verdict: Verdict, state: "firing" | "resolved"): string {
  const t = rule.rule.threshold;
  if (t === undefined) return "";
  if (state === "resolved") {
    if (t.min !== undefined && t.max !== undefined) return `is back within ${t.min}..${t.max}`;
    return t.min !== undefined ? `is back above ${t.min}` : `is back below ${t.max}`;
  }
  return verdict.bound === "min"
    ? `is below the minimum threshold ${verdict.threshold}`
    : `exceeds the maximum threshold ${verdict.threshold}`;
}
