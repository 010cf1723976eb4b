/**
 * What noise control would have done with a backtest's alerts, per rule: flapping notices and
 * escalations (the engine made them; they are counted here), and the notifications that the rule
 * files' `inhibit:` entries and `max_notifications` caps would have let through, inhibited or held
 * back. The notifier stage's own Inhibitor and StormGuard decide, in event time: a virtual clock that
 * the alerts' timestamps move, so a storm guard's interval ends when the events say a minute has passed.
 * Silences are not history (they are made by hand, now), so none apply.
 *
 * @module
 */
import type { SensorAlert } from "../contract/schemas.ts";
import type { Clock } from "../notifiers/clock.ts";
import { isAckUpdate } from "../notifiers/dispatcher.ts";
import { StormGuard } from "../notifiers/storm.ts";
import { Inhibitor } from "../rules/inhibit.ts";
import type { RuleSet } from "../rules/ruleset.ts";

export interface RuleNoise {
  /** Notices that made an episode `flapping` (`flapping: true`). */
  flapping: number;
  /** Escalation steps taken (a notice with a higher `escalation` than the alert's before). */
  escalations: number;
}

export interface RuleNotifications {
  sent: number;
  /** Not sent: a firing source alert of an inhibit rule had the same `equal` values. */
  inhibited: number;
  /** Held back by the rule's storm guard, and the summaries sent in their place. */
  held: number;
  summaries: number;
}

export interface NoiseOutcome {
  noise: Map<string, RuleNoise>;
  notifications: Map<string, RuleNotifications>;
}

/** Timers that run when the event time passes them, in the order they are due. */
class EventTimeClock implements Clock {
  #now = -Infinity;
  #timers: { at: number; seq: number; fn: () => void }[] = [];
  #seq = 0;

  now(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const timer = { at: this.#now + ms, seq: this.#seq++, fn };
    this.#timers.push(timer);
    return timer;
  }

  clearTimeout(handle: unknown): void {
    this.#timers = this.#timers.filter((t) => t !== handle);
  }

  /** Moves to `t` (never back: partitions interleave), running each timer due by then at its own time. */
  advance(t: number): void {
    for (;;) {
      const due = this.#timers.filter((x) => x.at <= t);
      if (due.length === 0) break;
      const next = due.reduce((a, b) => a.at < b.at || (a.at === b.at && a.seq < b.seq) ? a : b);
      this.#timers = this.#timers.filter((x) => x !== next);
      if (next.at > this.#now) this.#now = next.at;
      next.fn();
    }
    if (t > this.#now) this.#now = t;
  }
}

/**
 * Runs `alerts` (in the order the engine raised them) through the rule set's inhibit rules and storm
 * guards. Intervals still open at the end of the input are summed up, as their end would have done.
 */
export function noiseOutcome(alerts: readonly SensorAlert[], ruleSet: RuleSet): NoiseOutcome {
  const noise = new Map<string, RuleNoise>();
  const notifications = new Map<string, RuleNotifications>();
  const count = (rule: string) => {
    let n = notifications.get(rule);
    if (n === undefined) notifications.set(rule, n = { sent: 0, inhibited: 0, held: 0, summaries: 0 });
    return n;
  };
  const noiseOf = (rule: string) => {
    let n = noise.get(rule);
    if (n === undefined) noise.set(rule, n = { flapping: 0, escalations: 0 });
    return n;
  };
  const clock = new EventTimeClock();
  const inhibitor = new Inhibitor(() => ruleSet.inhibitions);
  const storm = new StormGuard({
    clock,
    cap: (rule) => ruleSet.byId.get(rule)?.maxNotifications ?? null,
    send: (summary) => {
      count(summary.rule_id).summaries++;
      return Promise.resolve();
    },
  });
  const escalation = new Map<string, number>();
  for (const alert of alerts) {
    const t = Date.parse(alert.timestamp);
    if (Number.isFinite(t)) clock.advance(t);
    if (alert.flapping === true) noiseOf(alert.rule_id).flapping++;
    const step = typeof alert.escalation === "number" ? alert.escalation : 0;
    if (step > (escalation.get(alert.alert_id) ?? 0)) {
      noiseOf(alert.rule_id).escalations += step - (escalation.get(alert.alert_id) ?? 0);
      escalation.set(alert.alert_id, step);
    }
    // As the Dispatcher decides (src/notifiers/dispatcher.ts), silences aside.
    inhibitor.observe(alert);
    if (alert.state !== "firing") storm.release(alert.alert_id);
    if (isAckUpdate(alert)) continue;
    if (inhibitor.inhibits(alert)) {
      count(alert.rule_id).inhibited++;
      continue;
    }
    if (storm.hold(alert) !== null) {
      count(alert.rule_id).held++;
      continue;
    }
    storm.release(alert.alert_id);
    count(alert.rule_id).sent++;
  }
  clock.advance(Infinity);
  return { noise, notifications };
}
