/**
 * Matching state of one `sequence:` rule: per group, the A events still waiting for their B (oldest
 * first), capped at `max_open` and dropped `within` after A, and when the last A-then-B match was (its
 * alert resolves `within` after it). Plain data per group, so the changelog keeps it as it is.
 *
 * @module
 */
import type { SensorType } from "../contract/schemas.ts";

/** An A event waiting for its B: what its alert and message need, not the whole event. */
export interface Pending {
  t: number;
  sensor_id: string;
  sensor_type: SensorType;
  unit: string;
  location: string | null;
  value: number;
  event_id: string;
}

export interface SequenceGroup {
  open: Pending[];
  /** A-then-B: the newest match's event time while its alert may be firing, else null. */
  matched_at: number | null;
}

export class SequenceState {
  readonly groups = new Map<string, SequenceGroup>();

  group(key: string): SequenceGroup {
    let g = this.groups.get(key);
    if (g === undefined) this.groups.set(key, g = { open: [], matched_at: null });
    return g;
  }

  /** Forgets a group with nothing left in it. */
  tidy(key: string, g: SequenceGroup): void {
    if (g.open.length === 0 && g.matched_at === null) this.groups.delete(key);
  }

  /** Partial matches held now. */
  get open(): number {
    let n = 0;
    for (const g of this.groups.values()) n += g.open.length;
    return n;
  }
}

/** A group's state as the state changelog keeps it; null when the group holds nothing. */
/** A group's partial matches under one sequence rule, as the state changelog keeps them. */
export interface SequenceEntry {
  /** The rule's `stateHash`: partial matches are restored only under the same rule. */
  rule_hash: string;
  open: Pending[];
  matched_at: number | null;
}

export function exportSequenceGroup(ruleHash: string, g: SequenceGroup | undefined): SequenceEntry | null {
  return g === undefined ? null : { rule_hash: ruleHash, open: g.open, matched_at: g.matched_at };
}

/** Reads back `exportSequenceGroup`'s value; null when it belongs to another version of the rule. */
export function importSequenceGroup(value: unknown, ruleHash: string): SequenceGroup | null {
  const v = value as { rule_hash?: unknown; open?: unknown; matched_at?: unknown } | null;
  if (v === null || v.rule_hash !== ruleHash || !Array.isArray(v.open)) return null;
  return { open: v.open as Pending[], matched_at: typeof v.matched_at === "number" ? v.matched_at : null };
}
