/**
 * Anomaly operations: JSON-Logic operations whose value depends on a sensor's own history, in event
 * time. `ewma` and `zscore` over a half-life, `robust_zscore` over a window (median and MAD), and
 * `rate_of_change`. Each use in a rule is a slot; a rule keeps one state per sensor with a value per
 * slot, learnt from every event the rule selects (also when the condition short-circuits before the
 * operation), after the event has been judged against the baseline before it.
 *
 * @module
 */
import { DURATION_PATTERN, durationMs } from "../contract/duration.ts";
import { SortedWindow } from "./sorted_window.ts";

/** The operations, with their arity; registered with the checker in operations.ts. */
export const ANOMALY_OPERATIONS = {
  /** `{"ewma": [field, half_life, warm_up?]}`: the exponentially weighted mean before this event. */
  ewma: { min: 2, max: 3 },
  /** `{"zscore": [field, half_life, warm_up?]}`: (x − ewma) / exponentially weighted deviation. */
  zscore: { min: 2, max: 3 },
  /** `{"robust_zscore": [field, window, warm_up?]}`: (x − median) / (1.4826 × MAD) over the window. */
  robust_zscore: { min: 2, max: 3 },
  /** `{"rate_of_change": [field, per?]}`: (x − previous) per `per` (default 1s) of event time. */
  rate_of_change: { min: 1, max: 2 },
} as const;
export type AnomalyOperation = keyof typeof ANOMALY_OPERATIONS;

export function isAnomalyOperation(op: string): op is AnomalyOperation {
  return Object.hasOwn(ANOMALY_OPERATIONS, op);
}

/**
 * A baseline needs this many values before its first verdict, besides its warm-up time: a z-score of
 * two values says nothing.
 */
export const MIN_SAMPLES = 5;
/**
 * `robust_zscore` keeps at most this many values per sensor and slot (the newest of its window): an
 * event moves up to that many sorted values and walks half of them for the MAD, and a sensor at 1 Hz
 * over a 1 h window would otherwise keep 3,600.
 */
export const MAX_WINDOW_VALUES = 512;
/** MAD × this estimates the standard deviation of normally distributed values. */
const MAD_SCALE = 1.4826;

/** Why an anomaly operation said what it said: for the alert (`anomaly`) and its message. */
export interface AnomalyExplanation {
  operation: AnomalyOperation;
  field: string;
  /** The value judged. */
  value: number;
  /** The mean (`ewma`, `zscore`), the median (`robust_zscore`), or the previous value (`rate_of_change`). */
  baseline: number;
  /** The standard deviation (or its robust estimate), or the change since the previous value. */
  deviation: number;
  /** What the operation returned. */
  score: number;
}

/** One use of an operation in a rule (identical uses share one). */
export interface Slot {
  op: AnomalyOperation;
  field: string;
  /** Half-life, window, or `per` of `rate_of_change`. */
  ms: number;
  warmUpMs: number;
  /**
   * The decay of the last time step and the step, reused while they repeat (a fleet samples at
   * regular intervals): `Math.pow` showed in the profile of a zscore rule
   * (tests/bench/fleet_rules_bench.ts).
   */
  lastStep: number;
  lastDecay: number;
}

interface EwmaState {
  n: number;
  first: number;
  t: number;
  mean: number;
  var: number;
}
/** `robust_zscore`'s state as the changelog keeps it (in memory: a `SortedWindow`). */
interface WindowEntry {
  first: number;
  t: number[];
  v: number[];
}
interface RateState {
  t: number;
  v: number;
}
/**
 * A sensor's state for one slot: plain data, checkpointed as it is, but for `robust_zscore`'s window
 * (`exportAnomalyState`).
 */
export type SlotState = EwmaState | SortedWindow | RateState | null;

/** The anomaly slots of one rule, and the values of the event being judged. */
export class AnomalyProgram {
  readonly slots: readonly Slot[];
  /**
   * Each slot's value for the current event, NaN while it has no verdict (`value()` reads it as
   * JSON-Logic's null). Numbers in a typed array: a plain array boxed every value, one allocation per
   * event.
   */
  readonly frame: Float64Array;
  // The current event's figures per slot, as numbers: an explanation object is built only for an
  // alert (one object per event was garbage for every event).
  readonly #x: Float64Array;
  readonly #baseline: Float64Array;
  readonly #deviation: Float64Array;
  readonly #read: ((data: Readonly<Record<string, unknown>>) => number | null)[];

  constructor(slots: readonly Slot[]) {
    this.slots = slots;
    this.frame = new Float64Array(slots.length).fill(NaN);
    this.#x = new Float64Array(slots.length);
    this.#baseline = new Float64Array(slots.length);
    this.#deviation = new Float64Array(slots.length);
    this.#read = slots.map((s) => _reader(s.field));
  }

  newState(): SlotState[] {
    return this.slots.map(() => null);
  }

  /**
   * Judges `data` at `time` against each slot's state before it (fills `frame`), then learns it into
   * the state. The rule's verdict reads only `frame`, so learning at once is the same as learning
   * after the verdict, one pass instead of two (tests/bench/fleet_rules_bench.ts: a zscore rule cost
   * 1.56x a threshold rule with two passes, 1.49x with one).
   */
  observe(state: SlotState[], data: Readonly<Record<string, unknown>>, time: number): void {
    for (let i = 0; i < this.slots.length; i++) {
      const before = state[i] ?? null;
      const after = this.#observeSlot(i, before, data, time);
      // Most events update a state in place: no store into the array (and its write barrier).
      if (after !== before) state[i] = after;
    }
  }

  /**
   * `observe` for a program of one slot, its state given and returned as it is, not in an array
   * (the engine keeps it so on the sensor's record).
   */
  observeOne(state: SlotState, data: Readonly<Record<string, unknown>>, time: number): SlotState {
    return this.#observeSlot(0, state, data, time);
  }

  /** Slot `i`'s verdict into `frame`, then the state after learning the event (most often `before`). */
  #observeSlot(
    i: number,
    before: SlotState,
    data: Readonly<Record<string, unknown>>,
    time: number,
  ): SlotState {
    const x = this.#read[i]!(data);
    if (x === null) {
      this.frame[i] = NaN;
      return before;
    }
    this.#x[i] = x;
    if (before instanceof SortedWindow) {
      this.frame[i] = this.#robust(i, before, x, time);
      return before;
    }
    this.frame[i] = before === null ? NaN : this.#judge(i, before, x, time);
    return _learn(this.slots[i]!, before, x, time);
  }

  /** True when every slot in `used` has a verdict for the current event. */
  ready(used: readonly number[]): boolean {
    if (used.length === 1) return !Number.isNaN(this.frame[used[0]!]);
    for (let k = 0; k < used.length; k++) if (Number.isNaN(this.frame[used[k]!])) return false;
    return true;
  }

  /** The explanations of the slots in `used` that have a verdict, for the alert. */
  explain(used: readonly number[]): AnomalyExplanation[] {
    const out: AnomalyExplanation[] = [];
    for (const i of used) {
      const score = this.frame[i]!;
      if (Number.isNaN(score)) continue;
      const slot = this.slots[i]!;
      out.push({
        operation: slot.op,
        field: slot.field,
        value: this.#x[i]!,
        baseline: this.#baseline[i]!,
        deviation: this.#deviation[i]!,
        score,
      });
    }
    return out;
  }

  /**
   * `robust_zscore`'s judge and learn in one (`#judge` and `_learn` for the other operations): a call
   * of its own, which drops the values gone from the window once and looks at the window once (in
   * `#judge` and `_learn` an event cost ~20 ns more: 333-354 ns against 307-332 ns, measured as for
   * `SortedWindow`'s layout).
   */
  #robust(i: number, w: SortedWindow, x: number, time: number): number {
    const slot = this.slots[i]!;
    // The values that have left the window by now: learning would drop them next, as it keeps only
    // the values newer than its newest time less the window. A late event's window reaches further
    // back than that, so it drops none. A repeating value turns the window's ring (`turn`), its median
    // and MAD those measured; else the window drops, measures, and learns the value unless it is late
    // (a late event is judged, not learnt).
    const since = time - slot.ms;
    const warm = time - w.first >= slot.warmUpMs;
    let baseline = NaN;
    const measured = w.turn(time, x, since, MAX_WINDOW_VALUES);
    if (measured >= 0) {
      if (warm && measured >= MIN_SAMPLES) baseline = w.measuredMedian;
    } else {
      w.dropUntil(since);
      if (warm && w.size >= MIN_SAMPLES) baseline = w.measure();
      if (time >= w.newest) w.push(time, x, MAX_WINDOW_VALUES);
    }
    if (Number.isNaN(baseline)) return NaN;
    const deviation = _floor(MAD_SCALE * w.measuredMad, baseline);
    this.#baseline[i] = baseline;
    this.#deviation[i] = deviation;
    return (x - baseline) / deviation;
  }

  /** Slot `i`'s value for `x` at `time`, its figures kept for `explain`; NaN when it has no verdict. */
  #judge(i: number, s: EwmaState | RateState, x: number, time: number): number {
    const slot = this.slots[i]!;
    let baseline: number, deviation: number, score: number;
    switch (slot.op) {
      case "ewma":
      case "zscore": {
        const st = s as EwmaState;
        if (st.n < MIN_SAMPLES || time - st.first < slot.warmUpMs) return NaN;
        baseline = st.mean;
        deviation = _floor(Math.sqrt(st.var), st.mean);
        score = slot.op === "ewma" ? st.mean : (x - st.mean) / deviation;
        break;
      }
      case "robust_zscore":
        return NaN; // `#robust`'s
      case "rate_of_change": {
        const st = s as RateState;
        if (time <= st.t) return NaN;
        baseline = st.v;
        deviation = x - st.v;
        score = deviation / ((time - st.t) / slot.ms);
        break;
      }
    }
    this.#baseline[i] = baseline;
    this.#deviation[i] = deviation;
    return score;
  }
}

/** Reads a field (`value`, or a path such as `metadata.temp`) as a finite number, else null. */
function _reader(field: string): (data: Readonly<Record<string, unknown>>) => number | null {
  const finite = (v: unknown) => typeof v === "number" && Number.isFinite(v) ? v : null;
  // The usual field, read by name: one shape of event, a monomorphic load.
  if (field === "value") {
    return (data) => {
      const v = data.value;
      return typeof v === "number" && Number.isFinite(v) ? v : null;
    };
  }
  if (!field.includes(".")) return (data) => finite(data[field]);
  const path = field.split(".");
  return (data) => {
    let v: unknown = data;
    for (const k of path) {
      if (v === null || typeof v !== "object") return null;
      v = (v as Record<string, unknown>)[k];
    }
    return finite(v);
  };
}

/**
 * The largest magnitude `ewma` and `zscore` learn. A baseline is a convex mix of the values learnt, so
 * its mean stays within ±this and a deviation's square within 4 × this² (4e300): no overflow. A
 * finite value beyond it (a glitch, a hostile 1e200) made the variance Infinity, which decay never
 * brings down (Infinity × (1 − α)), so every later z-score was 0 and the sensor never alerted again;
 * now it is judged against the baseline (and fires) but not learnt. No sensor measures 1e150.
 */
export const MAX_LEARNT_MAGNITUDE = 1e150;

/** A spread of 0 (a constant signal) would make any change an infinite score, which JSON cannot carry. */
function _floor(spread: number, level: number): number {
  const a = level < 0 ? -level : level;
  const least = a > 1 ? 1e-9 * a : 1e-9;
  return spread > least ? spread : least;
}

function _learn(slot: Slot, s: SlotState, x: number, time: number): SlotState {
  switch (slot.op) {
    case "ewma":
    case "zscore": {
      if (!(x <= MAX_LEARNT_MAGNITUDE && x >= -MAX_LEARNT_MAGNITUDE)) return s;
      if (s === null) return { n: 1, first: time, t: time, mean: x, var: 0 };
      const st = s as EwmaState;
      if (time <= st.t) return st;
      // Decay by the event time elapsed, so irregular sampling weighs by time, not by count.
      const step = time - st.t;
      if (step !== slot.lastStep) {
        slot.lastStep = step;
        slot.lastDecay = Math.pow(2, -step / slot.ms);
      }
      const alpha = 1 - slot.lastDecay;
      const diff = x - st.mean;
      const incr = alpha * diff;
      st.mean += incr;
      st.var = (1 - alpha) * (st.var + diff * incr);
      st.t = time;
      st.n++;
      return st;
    }
    case "robust_zscore": {
      // Its first value only: `#robust` judges and learns the next ones.
      if (s !== null) return s;
      const w = new SortedWindow(time);
      w.push(time, x, MAX_WINDOW_VALUES);
      return w;
    }
    case "rate_of_change": {
      if (s === null) return { t: time, v: x };
      const st = s as RateState;
      if (time > st.t) {
        st.t = time;
        st.v = x;
      }
      return st;
    }
  }
}

/** A sensor's baselines under one rule, as the state changelog keeps them. */
export interface AnomalyEntry {
  /** The rule's `stateHash`: baselines are restored only under the same rule. */
  rule_hash: string;
  slots: readonly (EwmaState | WindowEntry | RateState | null)[];
}

/**
 * The changelog's value for a sensor's baselines: `robust_zscore`'s window as the arrays of times
 * and values it was before it was kept sorted, so checkpoints written before read back the same.
 */
export function exportAnomalyState(ruleHash: string, state: readonly SlotState[]): AnomalyEntry {
  return {
    rule_hash: ruleHash,
    slots: state.map((s) => s instanceof SortedWindow ? { first: s.first, ...s.toArrays() } : s),
  };
}

/**
 * Reads back `exportAnomalyState`'s value; null when it belongs to another version of the rule or a
 * slot's state does not have its operation's shape.
 */
export function importAnomalyState(
  value: unknown,
  ruleHash: string,
  slots: readonly Slot[],
): SlotState[] | null {
  const v = value as { rule_hash?: unknown; slots?: unknown } | null;
  if (
    v === null || v.rule_hash !== ruleHash || !Array.isArray(v.slots) ||
    v.slots.length !== slots.length
  ) {
    return null;
  }
  const out: SlotState[] = [];
  for (let i = 0; i < slots.length; i++) {
    const s = _importSlot(slots[i]!, v.slots[i]);
    if (s === undefined) return null;
    out.push(s);
  }
  return out;
}

/** One slot's state from the changelog, undefined when it is not of its operation's shape. */
function _importSlot(slot: Slot, value: unknown): SlotState | undefined {
  if (value === null) return null;
  if (typeof value !== "object") return undefined;
  const o = value as Record<string, unknown>;
  const numbers = (...keys: string[]) => keys.every((k) => typeof o[k] === "number");
  switch (slot.op) {
    case "ewma":
    case "zscore":
      return numbers("n", "first", "t", "mean", "var")
        ? { n: o.n, first: o.first, t: o.t, mean: o.mean, var: o.var } as EwmaState
        : undefined;
    case "rate_of_change":
      return numbers("t", "v") ? { t: o.t, v: o.v } as RateState : undefined;
    case "robust_zscore": {
      const { t, v } = o;
      if (
        !numbers("first") || !Array.isArray(t) || !Array.isArray(v) || t.length !== v.length ||
        !t.every((x, k) => typeof x === "number" && (k === 0 || x >= t[k - 1])) ||
        !v.every((x) => typeof x === "number")
      ) {
        return undefined;
      }
      const w = new SortedWindow(o.first as number, Math.min(t.length, MAX_WINDOW_VALUES));
      for (let k = 0; k < t.length; k++) w.push(t[k] as number, v[k] as number, MAX_WINDOW_VALUES);
      // What `_learn` would have kept: the judge of the next event counts on it.
      w.dropUntil(w.newest - slot.ms);
      return w;
    }
  }
}

/**
 * Checks one use of an anomaly operation (`path` ends at the operation) and returns its slot, or
 * null after reporting why not. `fields` are the names a `var` may use.
 */
export function anomalySlot(
  op: AnomalyOperation,
  args: readonly unknown[],
  path: (string | number)[],
  fields: readonly string[],
  report: (path: (string | number)[], message: string) => void,
): Slot | null {
  const [field, span, third] = args;
  let ok = true;
  if (typeof field !== "string" || field === "") {
    report([...path, 0], `"${op}" needs a field name like "value" as its argument 1`);
    ok = false;
  } else if (!fields.includes(field.split(".")[0]!)) {
    report([...path, 0], `Unknown field "${field}" in "${op}" (known: ${fields.join(", ")})`);
    ok = false;
  }
  const duration = (v: unknown, i: number): number | null => {
    if ((typeof v === "string" && DURATION_PATTERN.test(v)) || (typeof v === "number" && v >= 0)) {
      const ms = durationMs(v);
      if (ms > 0) return ms;
    }
    report(
      [...path, i],
      `"${op}" needs a duration like "30m" as its argument ${i + 1}, got ${JSON.stringify(v)}`,
    );
    ok = false;
    return null;
  };
  let ms: number | null;
  let warmUpMs: number | null;
  if (op === "rate_of_change") {
    ms = span === undefined ? 1000 : duration(span, 1);
    warmUpMs = 0;
  } else {
    ms = duration(span, 1);
    warmUpMs = third === undefined ? ms : duration(third, 2);
  }
  if (!ok || ms === null || warmUpMs === null) return null;
  return { op, field: field as string, ms, warmUpMs, lastStep: -1, lastDecay: 1 };
}
