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

export class SortedWindow {
  /** Event time of the first value ever learnt: the warm-up counts from it, not from the window. */
  readonly first: number;
  // A ring of (time, value) in arrival order, `#n` of them from `#head`, and the same values sorted
  // in `#sorted[0..#n)`. Typed arrays, reused: no allocation per event once the window has its size.
  #time: Float64Array;
  #value: Float64Array;
  #sorted: Float64Array;
  #head = 0;
  #n = 0;

  constructor(first: number, capacity = INITIAL_CAPACITY) {
    this.first = first;
    const c = Math.max(1, capacity);
    this.#time = new Float64Array(c);
    this.#value = new Float64Array(c);
    this.#sorted = new Float64Array(c);
  }

  /** Number of values in the window. */
  get size(): number {
    return this.#n;
  }

  /** Event time of the newest value, -Infinity when empty. */
  get newest(): number {
    if (this.#n === 0) return -Infinity;
    return this.#time[this.#at(this.#n - 1)]!;
  }

  /** Drops the oldest values while their time is at or before `since`. */
  dropUntil(since: number): void {
    while (this.#n > 0 && this.#time[this.#head]! <= since) this.#dropOldest();
  }

  /**
   * Adds a value after the newest (the caller keeps times in order); the oldest leaves first when
   * the window already holds `max` values.
   */
  push(time: number, value: number, max: number): void {
    if (this.#n >= max) this.#dropOldest();
    if (this.#n === this.#time.length) this.#grow(Math.min(Math.max(max, 1), this.#n * 2));
    const end = this.#at(this.#n);
    this.#time[end] = time;
    this.#value[end] = value;
    const s = this.#sorted;
    const at = _lowerBound(s, this.#n, value);
    for (let k = this.#n; k > at; k--) s[k] = s[k - 1]!;
    s[at] = value;
    this.#n++;
  }

  /** The median of the values (the mean of the middle two for an even count); NaN when empty. */
  median(): number {
    const n = this.#n;
    if (n === 0) return NaN;
    const s = this.#sorted;
    const mid = n >> 1;
    return n % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
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
    const s = this.#sorted;
    const mid = n >> 1;
    // Values below index `mid` are at most the median, from index `mid` at least the median.
    let lo = mid - 1;
    let hi = mid;
    let previous = NaN;
    let current = NaN;
    for (let rank = 0; rank <= mid; rank++) {
      previous = current;
      const dl = lo >= 0 ? Math.abs(s[lo]! - median) : Infinity;
      const dh = hi < n ? Math.abs(s[hi]! - median) : Infinity;
      if (hi >= n || (lo >= 0 && dl <= dh)) {
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
      t[k] = this.#time[i]!;
      v[k] = this.#value[i]!;
    }
    return { t, v };
  }

  /** Index in the ring of the k-th oldest value. */
  #at(k: number): number {
    const i = this.#head + k;
    return i < this.#time.length ? i : i - this.#time.length;
  }

  #dropOldest(): void {
    const value = this.#value[this.#head]!;
    this.#head = this.#at(1);
    const s = this.#sorted;
    const n = this.#n - 1;
    // The stored value itself is in the sorted values: its lower bound is an equal one.
    for (let k = _lowerBound(s, this.#n, value); k < n; k++) s[k] = s[k + 1]!;
    this.#n = n;
  }

  #grow(capacity: number): void {
    const time = new Float64Array(capacity);
    const value = new Float64Array(capacity);
    for (let k = 0; k < this.#n; k++) {
      const i = this.#at(k);
      time[k] = this.#time[i]!;
      value[k] = this.#value[i]!;
    }
    const sorted = new Float64Array(capacity);
    sorted.set(this.#sorted.subarray(0, this.#n));
    this.#time = time;
    this.#value = value;
    this.#sorted = sorted;
    this.#head = 0;
  }
}

/**
 * The first index of `s[0..n)` whose value is not before `v`, in the order of a typed array's sort
 * (-0 before 0), so the sorted values are the very ones a sort gives, and so is their median.
 */
function _lowerBound(s: Float64Array, n: number, v: number): number {
  let lo = 0;
  let hi = n;
  while (lo < hi) {
    const m = (lo + hi) >> 1;
    const x = s[m]!;
    if (x < v || (x === v && x === 0 && 1 / x < 1 / v)) lo = m + 1;
    else hi = m;
  }
  return lo;
}
