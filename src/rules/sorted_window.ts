/**
 * A sensor's values over a time window, kept both in arrival order (to know which value leaves the
 * window) and sorted (so the median is a read and the MAD a walk over half the values): the state of a
 * `robust_zscore` slot (anomaly.ts). Copying the window and sorting it twice per event made a
 * `robust_zscore` rule cost 3.4x a threshold rule (tests/bench/fleet_rules_bench.ts, 583 ns against
 * 173 ns per event).
 *
 * @module
 */

/** Capacity of a new window: a sensor every 10 s over a 1-minute window keeps 6 or 7 values. */
const INITIAL_CAPACITY = 8;

const SAME = 0;
const PLUS_ONE = 1;
const CHANGED = 2;

export class SortedWindow {
  /** Event time of the first value ever learnt: the warm-up counts from it, not from the window. */
  readonly first: number;
  // One typed array, reused (no allocation per event once the window has its size): a ring of times
  // in arrival order at [0, cap), their values at [cap, 2 cap), `#n` of each from `#head`, and the
  // same values sorted at [2 cap, 2 cap + #n). One array rather than three: with 10,000 sensors each
  // event's window is cold in the cache, and three arrays cost 70-140 ns more per event (400-490 ns
  // against 333-354 ns; the fleet bench's robust_zscore rules, both builds interleaved in one
  // process, fastest of 25 rounds of 100,000 events, load 6).
  #buf: Float64Array;
  #cap: number;
  #head = 0;
  #n = 0;
  // The last `measure()`'s figures, and how the values differ from the ones it measured: SAME,
  // PLUS_ONE (`#plus` came in since), or CHANGED.
  #median = NaN;
  #mad = NaN;
  #delta = CHANGED;
  #plus = NaN;

  constructor(first: number, capacity = INITIAL_CAPACITY) {
    this.first = first;
    this.#cap = Math.max(1, capacity);
    this.#buf = new Float64Array(3 * this.#cap);
  }

  /** Number of values in the window. */
  get size(): number {
    return this.#n;
  }

  /** Event time of the newest value, -Infinity when empty. */
  get newest(): number {
    if (this.#n === 0) return -Infinity;
    return this.#buf[this.#at(this.#n - 1)]!;
  }

  /** Drops the oldest values while their time is at or before `since`. */
  dropUntil(since: number): void {
    while (this.#n > 0 && this.#buf[this.#head]! <= since) this.#dropOldest();
  }

  /**
   * An event of `robust_zscore` whose value is the same to the bit as the one that leaves the window
   * and as the one that came in after the last `measure()`, and leaves alone: the sorted values stay as
   * they are, the median and MAD measured are those of the values before the event less the one that
   * leaves, and only the ring turns (the new time and value after the newest). Returns how many values
   * were measured (the window's size less one), or -1 when the event is not such an event, the window
   * untouched: `dropUntil(since)`, `measure()` and `push(time, value, max)` then.
   *
   * A window's own work per event for a repeating value went from 34-38 ns to 23-29 ns, and stayed at
   * 69-73 ns (against 68-71 ns) for a value that changes at every event (scripts/bench/window_ab.ts,
   * with and without `--changing`, against f74f537, each checkout first in turn, two runs each: first
   * quartiles). One call that also dropped, measured and pushed when it could not turn cost the
   * changing value 3-8 ns more in runs like these; deciding from fields rather than the ring's times, or
   * from a count of the newest values that are the same, changed nothing: a window that never touched
   * its array took 16 ns, the rest is the array's memory, cold with 10,000 sensors.
   */
  turn(time: number, value: number, since: number, max: number): number {
    const n = this.#n;
    if (this.#delta !== PLUS_ONE || !_same(value, this.#plus) || n < 2 || n > max) return -1;
    const b = this.#buf;
    const head = this.#head;
    const cap = this.#cap;
    const second = head + 1 < cap ? head + 1 : 0;
    const last = head + n - 1 < cap ? head + n - 1 : head + n - 1 - cap;
    if (b[head]! > since || b[second]! <= since || time < b[last]! || !_same(b[cap + head]!, value)) {
      return -1;
    }
    const end = last + 1 < cap ? last + 1 : 0;
    b[end] = time;
    b[cap + end] = value;
    this.#head = second;
    return n - 1;
  }

  /** The median of the last `measure()`. */
  get measuredMedian(): number {
    return this.#median;
  }

  /**
   * Adds a value after the newest (the caller keeps times in order); the oldest leaves first when
   * the window already holds `max` values.
   */
  push(time: number, value: number, max: number): void {
    if (this.#n >= max) this.#dropOldest();
    if (this.#n === this.#cap) this.#grow(Math.min(Math.max(max, 1), this.#n * 2));
    const b = this.#buf;
    const end = this.#at(this.#n);
    b[end] = time;
    b[this.#cap + end] = value;
    // One walk from the top both finds the place and moves the greater values up: a window is
    // short (6 values for a sensor every 10 s over a minute), and a binary search before the move
    // cost more in mispredicted branches than it saved in compares.
    const from = 2 * this.#cap;
    let k = from + this.#n;
    while (k > from && _before(value, b[k - 1]!)) {
      b[k] = b[k - 1]!;
      k--;
    }
    b[k] = value;
    this.#n++;
    if (this.#delta === SAME) {
      this.#delta = PLUS_ONE;
      this.#plus = value;
    } else this.#delta = CHANGED;
  }

  /**
   * The median of the values, and their MAD into `measuredMad`. A sensor sampled regularly whose
   * value repeats loses the same value it gains: the values are the ones measured last, and so are
   * their median and MAD, read again rather than computed. With this and the walks from the top,
   * a window's own work per event (drop, measure, push; 10,000 windows of 6 values, both builds
   * interleaved in one process, fastest of 30 rounds of 50,000 events, CPU time) went from 82-88 ns
   * to 59 ns for a repeating value, from 120-136 ns to 113-122 ns for one that changes every event.
   */
  measure(): number {
    if (this.#delta !== SAME) {
      this.#median = this.median();
      this.#mad = this.mad(this.#median);
      this.#delta = SAME;
    }
    return this.#median;
  }

  /** The MAD of the last `measure()`. */
  get measuredMad(): number {
    return this.#mad;
  }

  /** The median of the values (the mean of the middle two for an even count); NaN when empty. */
  median(): number {
    const n = this.#n;
    if (n === 0) return NaN;
    const b = this.#buf;
    const mid = 2 * this.#cap + (n >> 1);
    return n % 2 === 1 ? b[mid]! : (b[mid - 1]! + b[mid]!) / 2;
  }

  /**
   * The median of the values' absolute deviations from `median` (this window's median): the
   * deviations of the sorted values grow outward from the middle on both sides, so the k-th smallest
   * is found by merging the two sides, with no copy and no sort. Same arithmetic as sorting the
   * deviations, so the same number to the bit (tests/rules/sorted_window_test.ts).
   */
  mad(median: number): number {
    const n = this.#n;
    if (n === 0) return NaN;
    const s = this.#buf;
    const from = 2 * this.#cap;
    const end = from + n;
    const half = n >> 1;
    // Values below the middle are at most the median, from the middle on at least the median.
    let lo = from + half - 1;
    let hi = from + half;
    let previous = NaN;
    let current = NaN;
    for (let rank = 0; rank <= half; rank++) {
      previous = current;
      const dl = lo >= from ? Math.abs(s[lo]! - median) : Infinity;
      const dh = hi < end ? Math.abs(s[hi]! - median) : Infinity;
      if (hi >= end || (lo >= from && dl <= dh)) {
        current = dl;
        lo--;
      } else {
        current = dh;
        hi++;
      }
    }
    return n % 2 === 1 ? current : (previous + current) / 2;
  }

  /** Times and values in arrival order, oldest first. */
  toArrays(): { t: number[]; v: number[] } {
    const t = new Array<number>(this.#n);
    const v = new Array<number>(this.#n);
    for (let k = 0; k < this.#n; k++) {
      const i = this.#at(k);
      t[k] = this.#buf[i]!;
      v[k] = this.#buf[this.#cap + i]!;
    }
    return { t, v };
  }

  /** Index in the ring of the k-th oldest value. */
  #at(k: number): number {
    const i = this.#head + k;
    return i < this.#cap ? i : i - this.#cap;
  }

  #dropOldest(): void {
    const b = this.#buf;
    const value = b[this.#cap + this.#head]!;
    this.#head = this.#at(1);
    const from = 2 * this.#cap;
    const end = from + this.#n - 1;
    // The stored value itself is in the sorted values: the last one the same to the bit leaves, so a
    // sensor whose value repeats moves nothing.
    let k = end;
    while (!_same(b[k]!, value)) k--;
    for (; k < end; k++) b[k] = b[k + 1]!;
    this.#n--;
    this.#delta = this.#delta === PLUS_ONE && _same(value, this.#plus) ? SAME : CHANGED;
  }

  #grow(capacity: number): void {
    const b = this.#buf;
    const grown = new Float64Array(3 * capacity);
    for (let k = 0; k < this.#n; k++) {
      const i = this.#at(k);
      grown[k] = b[i]!;
      grown[capacity + k] = b[this.#cap + i]!;
    }
    grown.set(b.subarray(2 * this.#cap, 2 * this.#cap + this.#n), 2 * capacity);
    this.#buf = grown;
    this.#cap = capacity;
    this.#head = 0;
  }
}

/** True when `a` sorts before `b` in a typed array's sort (-0 before 0), as a sort would place them. */
function _before(a: number, b: number): boolean {
  return a < b || (a === 0 && b === 0 && 1 / a < 1 / b);
}

/** True when `a` and `b` are the same number to the bit (-0 is not 0). */
function _same(a: number, b: number): boolean {
  return a === b && (a !== 0 || 1 / a === 1 / b);
}
