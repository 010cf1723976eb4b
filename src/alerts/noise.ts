/**
 * The parts of an episode's life that keep notifications few: flap detection (an alert changing state
 * too often is notified once as flapping, then not until it has been stable for the window) and
 * escalation (a firing, unacknowledged alert takes a higher priority after a time). Both run in event
 * time, like the rest of the lifecycle, and their state is checkpointed with the episodes'.
 *
 * @module
 */
import type { Priority, SensorAlert } from "../contract/schemas.ts";

/** What flap detection and escalation read of an episode (lifecycle.ts's `Episode` is one). */
export interface EpisodeView {
  rule_id: string;
  group: string;
  phase: string;
  acknowledged: boolean;
  fired_at: number | null;
  alert: SensorAlert | null;
  escalation?: number;
}

/** A rule's flap detection, compiled: `maxTransitions` firing/resolved changes allowed per `windowMs`. */
export interface FlapSpec {
  windowMs: number;
  maxTransitions: number;
}

/** Flap detection state of one rule × group, as the state changelog keeps it. Plain data. */
export interface FlapState {
  /** The rule's `stateHash` when it was written: restored only under the same rule. */
  rule_hash: string;
  /** Event times of the transitions within the window, oldest first. */
  times: number[];
  flapping: boolean;
  /** The newest transition's alert: its `state` is the state a stable notice reports. */
  last: SensorAlert;
  /**
   * The alert id of the flapping notice: what consumers last saw firing. The stable notice resolves or
   * continues it, whichever episode is current by then (absent in states written before it existed).
   */
  open_id?: string;
}

/**
 * Recent transitions per rule × group. A state lives while a transition is younger than the window:
 * memory is bounded by the groups that changed state within one window.
 */
export class FlapTracker {
  readonly #byRule = new Map<string, Map<string, FlapState>>();

  /**
   * Records a firing or resolved transition at `time`. Returns true when the alert is held back: the
   * rule × group flaps, or this transition made it flap (then one flapping notice goes to `out`
   * instead). Otherwise the alert goes to `out`.
   */
  transition(
    spec: FlapSpec,
    ruleHash: string,
    ep: EpisodeView,
    time: number,
    alert: SensorAlert,
    out: SensorAlert[],
  ): boolean {
    let f = this.get(ep.rule_id, ep.group);
    if (f === undefined) {
      f = { rule_hash: ruleHash, times: [], flapping: false, last: alert };
      this.restore(ep.rule_id, ep.group, f);
    }
    const since = time - spec.windowMs;
    // Only the newest `maxTransitions + 1` transitions decide anything (whether it flaps, when it is
    // stable): a sensor flipping on every event kept all of them, 20,000 in a long window, a 280 KB
    // changelog record rewritten on each event, in time quadratic in the transitions.
    f.times = f.times.filter((t) => t > since).slice(-spec.maxTransitions);
    f.times.push(time);
    f.last = alert;
    if (f.flapping) return true;
    if (f.times.length <= spec.maxTransitions) {
      out.push(alert);
      return false;
    }
    f.flapping = true;
    f.open_id = alert.alert_id;
    const { ack_update: _, ...rest } = alert;
    out.push({
      ...rest,
      // Something to look at, whichever way it flipped last.
      state: "firing",
      flapping: true,
      message: `Flapping: ${f.times.length} changes of state within ${minutes(spec.windowMs)}, ` +
        `no notifications until stable for ${minutes(spec.windowMs)}: ${alert.message}`,
    });
    return true;
  }

  isFlapping(ruleId: string, group: string): boolean {
    return this.get(ruleId, group)?.flapping === true;
  }

  /**
   * Ends the states of the rule whose newest transition is a whole window old at `now`: a flapping one
   * gets `onStable` (which publishes the single notice of its current state, stamped when it became
   * stable). Returns when the rule next needs a look.
   */
  settle(
    ruleId: string,
    spec: FlapSpec,
    now: number,
    onStable: (group: string, state: FlapState, at: number) => void,
    changed: (group: string) => void,
  ): number {
    const groups = this.#byRule.get(ruleId);
    if (groups === undefined) return Infinity;
    let next = Infinity;
    for (const [group, f] of groups) {
      const stableAt = (f.times.at(-1) ?? -Infinity) + spec.windowMs;
      if (stableAt > now) {
        next = Math.min(next, stableAt);
        continue;
      }
      this.forget(ruleId, group);
      changed(group);
      if (f.flapping) onStable(group, f, stableAt);
    }
    return next;
  }

  /** When the state of this rule × group is next due to settle, or Infinity. */
  due(ruleId: string, group: string, spec: FlapSpec): number {
    const newest = this.get(ruleId, group)?.times.at(-1);
    return newest === undefined ? Infinity : newest + spec.windowMs;
  }

  get(ruleId: string, group: string): FlapState | undefined {
    return this.#byRule.get(ruleId)?.get(group);
  }

  /** Puts back a state read from the state changelog. */
  restore(ruleId: string, group: string, f: FlapState): void {
    let groups = this.#byRule.get(ruleId);
    if (groups === undefined) this.#byRule.set(ruleId, groups = new Map());
    groups.set(group, f);
  }

  forget(ruleId: string, group: string): void {
    const groups = this.#byRule.get(ruleId);
    groups?.delete(group);
    if (groups?.size === 0) this.#byRule.delete(ruleId);
  }

  /** Drops the states of rules `keep` refuses (changed or removed); returns them as [rule, group]. */
  dropWhere(keep: (ruleId: string, ruleHash: string) => boolean): [string, string][] {
    const dropped: [string, string][] = [];
    for (const [ruleId, groups] of this.#byRule) {
      for (const [group, f] of groups) {
        if (keep(ruleId, f.rule_hash)) continue;
        dropped.push([ruleId, group]);
      }
    }
    for (const [r, g] of dropped) this.forget(r, g);
    return dropped;
  }

  /** The rule × groups flapping now, for the API and metrics. */
  flapping(): { rule_id: string; group: string; since: number }[] {
    const out: { rule_id: string; group: string; since: number }[] = [];
    for (const [rule_id, groups] of this.#byRule) {
      for (const [group, f] of groups) if (f.flapping) out.push({ rule_id, group, since: f.times[0] ?? 0 });
    }
    return out;
  }
}

/**
 * When the episode's next escalation step falls due (event time), or Infinity: it has taken every
 * step, is acknowledged, or is not firing.
 */
export function escalationDue(
  steps: readonly { afterMs: number; priority: Priority }[],
  ep: EpisodeView,
): number {
  if (ep.phase === "pending" || ep.acknowledged || ep.fired_at === null || ep.alert === null) return Infinity;
  const step = steps[ep.escalation ?? 0];
  return step === undefined ? Infinity : ep.fired_at + step.afterMs;
}

function minutes(ms: number): string {
  return ms % 60_000 === 0 ? `${ms / 60_000}m` : `${ms / 1000}s`;
}
