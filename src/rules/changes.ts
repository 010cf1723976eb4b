/**
 * What of the rule engine's state changed, as typed values: the engine reports them and restores from
 * them; how they are written to the state changelog (keys, JSON, validation on the way back) is
 * `src/state/format.ts`'s business alone.
 *
 * @module
 */
import type { Episode } from "../alerts/lifecycle.ts";
import type { FlapState } from "../alerts/noise.ts";
import type { SensorType } from "../contract/schemas.ts";
import type { AnomalyEntry } from "./anomaly.ts";
import type { SequenceEntry } from "./sequences.ts";
import type { Acc } from "./windows.ts";

/** The open windows of one window rule's group. */
export interface WindowGroupState {
  /** The rule's `stateHash` when the windows were opened. */
  rule_hash: string;
  watermark: number;
  /** The group's newest event time. */
  time?: number;
  accs: Acc[];
  count: Acc | null;
}

/** When a deadman rule last saw one sensor, by event time. */
export interface DeadmanTimer {
  /** The rule's `scopeHash`: last-seen times are facts about the sensors it selects, whatever its timing. */
  rule_hash: string;
  last: number;
  sensor_type: SensorType;
  unit: string;
  location: string | null;
  /** A listed sensor that has not sent anything: `last` is when the rule started watching it. */
  never?: boolean;
}

/** One piece of engine state, keyed by rule and group; `value` null means it is gone. */
export type StateChange =
  | { kind: "episode"; rule: string; group: string; value: Episode | null }
  | { kind: "window"; rule: string; group: string; value: WindowGroupState | null }
  | { kind: "deadman"; rule: string; group: string; value: DeadmanTimer | null }
  | { kind: "flap"; rule: string; group: string; value: FlapState | null }
  | { kind: "anomaly"; rule: string; group: string; value: AnomalyEntry | null }
  | { kind: "sequence"; rule: string; group: string; value: SequenceEntry | null };

export type StateKind = StateChange["kind"];

/**
 * Which pieces of state changed since the last `take()`, by kind, rule and group: a key set, not the
 * values, so a group that changes on every event of a batch is written once, with its newest value.
 */
export class ChangeTracker {
  readonly #dirty = new Map<StateKind, Map<string, Set<string>>>([
    ["episode", new Map()],
    ["window", new Map()],
    ["deadman", new Map()],
    ["flap", new Map()],
    ["anomaly", new Map()],
    ["sequence", new Map()],
  ]);

  /** True when something was marked since the last `take()`. */
  get pending(): boolean {
    for (const byRule of this.#dirty.values()) if (byRule.size > 0) return true;
    return false;
  }

  mark(kind: StateKind, rule: string, group: string): void {
    const byRule = this.#dirty.get(kind)!;
    let groups = byRule.get(rule);
    if (groups === undefined) byRule.set(rule, groups = new Set());
    groups.add(group);
  }

  /** The current value (from `valueOf`) of every piece of state marked since the last call. */
  take(valueOf: (kind: StateKind, rule: string, group: string) => StateChange["value"]): StateChange[] {
    const out: StateChange[] = [];
    for (const [kind, byRule] of this.#dirty) {
      for (const [rule, groups] of byRule) {
        for (const group of groups) {
          out.push({ kind, rule, group, value: valueOf(kind, rule, group) } as StateChange);
        }
        groups.clear();
      }
      byRule.clear();
    }
    return out;
  }
}
