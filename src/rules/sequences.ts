/**
 * Matching state of one `sequence:` rule: per group, the A events still waiting for their B (oldest
 * first), capped at `max_open` and dropped `within` after A, and when the last A-then-B match was (its
 * alert resolves `within` after it). Plain data per group, so the changelog keeps it as it is.
 *
 * @module
 */
import type { SensorType } from "../contract/schemas.ts";
import { EVENT_LIMITS } from "../decode/bounds.ts";

/**
 * The most bytes of JSON a group's partial matches may take: the changelog keeps a group in one
 * record, and a record over `MAX_STATE_RECORD_BYTES` (900 KiB, src/state/format.ts) is written as a
 * tombstone, so the next restore forgot the group's every partial match. 1 KiB is left for the
 * record's other fields. With ids of 100 characters that is ~3,500 partial matches; `max_open` may
 * be 10,000.
 */
export const MAX_GROUP_BYTES = 900 * 1024 - 1024;

/**
 * The most bytes of JSON one partial match can take under the decode bounds: its strings escaped at
 * 6 bytes a UTF-16 unit (`\u0001`), its two numbers at 25, its keys and punctuation under 128.
 */
export const MAX_PENDING_BYTES = 6 *
    (EVENT_LIMITS.sensorIdChars + EVENT_LIMITS.unitChars + EVENT_LIMITS.locationChars +
      EVENT_LIMITS.eventIdChars) +
  2 * 25 + 128;

/**
 * Below this many partial matches a group cannot pass `MAX_GROUP_BYTES`, so its size is not kept
 * (267 with the bounds of today; `max_open` is 100 by default). Stringifying and encoding every A
 * event made one cost 1.8-1.9 µs against 0.5 µs (a loop of 200,000 A events over 1,000 groups through
 * the engine, the build before against this one, median of 7 rounds each); sizes counted and kept
 * (`jsonBytes`), an A event in one of 20 groups of 10,000 costs 0.75-0.82 µs against 0.57-0.58 µs, and
 * nothing more below this many. tests/bench/fleet_rules_bench.ts has a row of such groups.
 */
const UNTRACKED_BELOW = Math.floor(MAX_GROUP_BYTES / MAX_PENDING_BYTES);

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
  /** Oldest first. Changed through `addPending` and the other functions here, which keep `sizes`. */
  open: Pending[];
  /** A-then-B: the newest match's event time while its alert may be firing, else null. */
  matched_at: number | null;
  /**
   * Once `open` reaches `UNTRACKED_BELOW` matches: each one's bytes (`pendingBytes`, side by side
   * with `open`), and their sum in `bytes`. Null below.
   */
  sizes: number[] | null;
  bytes: number;
}

const encoder = new TextEncoder();

/**
 * The bytes of `JSON.stringify(s)` in UTF-8, counted rather than made: a unit like `°C` sent the
 * library's way (stringify, then encode) cost a partial match ~0.9 µs more per A event in a group
 * of 10,000 (tests/rules/sequences_test.ts compares the two on arbitrary strings).
 */
export function jsonBytes(s: string): number {
  let n = 2;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x20 && c < 0x80) n += c === 0x22 || c === 0x5c ? 2 : 1;
    else if (c < 0x20) n += c === 8 || c === 9 || c === 10 || c === 12 || c === 13 ? 2 : 6;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdfff) {
      // A pair is one 4-byte character; a lone surrogate is written escaped, `\udxxx`.
      if (c <= 0xdbff && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
        n += 4;
        i++;
      } else n += 6;
    } else n += 3;
  }
  return n;
}

/**
 * At least `p`'s bytes in its group's record (`JSON.stringify(p)` in UTF-8, and a comma): exact for
 * the strings, 25 for each number, the longest a double's JSON takes (`-0.0000010013093061843882`: 17
 * digits after five zeros; an exponent's form, `-2.2250738585072014e-308`, takes 24).
 */
export function pendingBytes(p: Pending): number {
  // {"t":,"sensor_id":,"sensor_type":,"unit":,"location":,"value":,"event_id":} is 75 bytes.
  return 76 + fieldBytes(p.t) + fieldBytes(p.sensor_id) + fieldBytes(p.sensor_type) +
    fieldBytes(p.unit) + fieldBytes(p.location) + fieldBytes(p.value) + fieldBytes(p.event_id);
}

/**
 * A field's bytes: a number at 25, a string counted; anything else (a changelog record written by
 * something else, restored as it is) measured the library's way.
 */
function fieldBytes(x: unknown): number {
  if (typeof x === "number") return 25;
  if (typeof x === "string") return jsonBytes(x);
  if (x === null) return 4;
  return encoder.encode(JSON.stringify(x) ?? "null").byteLength;
}

/** Starts keeping the sizes of `g`'s matches once there are enough of them to matter. */
function track(g: SequenceGroup): void {
  if (g.sizes !== null || g.open.length < UNTRACKED_BELOW) return;
  g.sizes = g.open.map(pendingBytes);
  g.bytes = 0;
  for (const n of g.sizes) g.bytes += n;
}

/**
 * Adds `p` in time order (after the newest, or before the newer ones when it came late), then drops
 * the oldest while the group holds more than `maxOpen` or more than `MAX_GROUP_BYTES`; returns how
 * many went.
 */
export function addPending(g: SequenceGroup, p: Pending, maxOpen: number): number {
  let at = g.open.length;
  while (at > 0 && g.open[at - 1]!.t > p.t) at--;
  const last = at === g.open.length;
  if (last) g.open.push(p);
  else g.open.splice(at, 0, p);
  if (g.sizes !== null) {
    const n = pendingBytes(p);
    if (last) g.sizes.push(n);
    else g.sizes.splice(at, 0, n);
    g.bytes += n;
  } else track(g);
  let dropped = 0;
  while (g.open.length > maxOpen || (g.bytes > MAX_GROUP_BYTES && g.open.length > 1)) {
    dropOldest(g);
    dropped++;
  }
  return dropped;
}

/** Removes and returns the oldest partial match. */
export function dropOldest(g: SequenceGroup): Pending | undefined {
  const p = g.open.shift();
  if (p !== undefined && g.sizes !== null) g.bytes -= g.sizes.shift()!;
  return p;
}

/** Removes and returns the partial match at `i`. */
export function takePending(g: SequenceGroup, i: number): Pending {
  const [p] = g.open.splice(i, 1);
  if (g.sizes !== null) g.bytes -= g.sizes.splice(i, 1)[0]!;
  return p!;
}

/** Keeps only the partial matches `keep` says so. */
export function keepPending(g: SequenceGroup, keep: (p: Pending) => boolean): void {
  const open: Pending[] = [];
  const sizes: number[] | null = g.sizes === null ? null : [];
  g.open.forEach((p, i) => {
    if (keep(p)) {
      open.push(p);
      sizes?.push(g.sizes![i]!);
    } else if (g.sizes !== null) g.bytes -= g.sizes[i]!;
  });
  g.open = open;
  g.sizes = sizes;
}

export class SequenceState {
  readonly groups = new Map<string, SequenceGroup>();

  group(key: string): SequenceGroup {
    let g = this.groups.get(key);
    if (g === undefined) this.groups.set(key, g = { open: [], matched_at: null, sizes: null, bytes: 0 });
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
  const g: SequenceGroup = {
    open: v.open as Pending[],
    matched_at: typeof v.matched_at === "number" ? v.matched_at : null,
    sizes: null,
    bytes: 0,
  };
  track(g);
  return g;
}
