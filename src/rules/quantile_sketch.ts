/**
 * A bounded quantile sketch with relative accuracy, for a window's `p95` once it holds more values than
 * it keeps exactly (src/rules/windows.ts). DDSketch-style: a value goes to the bucket of its magnitude
 * on a logarithmic scale, so a bucket's value is within `SKETCH_RELATIVE_ERROR` of every value in it,
 * and the nearest-rank quantile is the value of the bucket that holds that rank.
 *
 * Hand-written rather than `@datadog/sketches-js` (2.1.1): that one serialises to protobuf only (the
 * changelog is JSON), answers rank `q·(n−1)` rather than the nearest rank README documents, and its
 * default store grows without a bound. Its differential test against the exact `percentile()`:
 * tests/rules/quantile_sketch_test.ts.
 *
 * The sketch is plain data (it goes into the changelog as it is): one sorted list of bucket keys and
 * their counts. A key orders as its values do: 0 holds zero (and magnitudes below the smallest normal
 * double), a positive value `v` has `bias + ceil(log_γ v)` (always ≥ 1), a negative one the negative of
 * its magnitude's key.
 *
 * @module
 */

export interface QuantileSketch {
  /** The relative accuracy the keys were made with; a restored sketch goes on with its own. */
  alpha: number;
  /** Bucket keys, strictly ascending. */
  keys: number[];
  /** Values in each bucket (at least 1), in the order of `keys`. */
  counts: number[];
}

/** What README promises: a quantile from the sketch is within 1% of the exact one. */
export const SKETCH_RELATIVE_ERROR = 0.01;
/**
 * The buckets' accuracy, a little under the promise: a value at a bucket's edge is off by alpha plus
 * rounding (at alpha 0.01, the p95 of [1, -1] came out 1.0000000000000009% off, found by the test).
 */
const ALPHA = 0.0099;
/**
 * Buckets a sketch keeps; past that the lowest two merge. 2,048 buckets at 1% span 17.8 orders of
 * magnitude of one sign (DDSketch's default too); serialised at most ~30 KiB (a key up to 6
 * characters, a count up to 7, two commas).
 */
export const SKETCH_MAX_BUCKETS = 2048;
const MIN_NORMAL = 2.2250738585072014e-308;

interface Scale {
  /** ln γ, γ = (1 + α) / (1 − α). */
  lnGamma: number;
  /** Added to a magnitude's index so that every normal magnitude has a key ≥ 1. */
  bias: number;
  /** ln(1 − α): a bucket's value is γ^i · (1 − α), the middle of (γ^(i−1), γ^i] in relative terms. */
  lnLow: number;
}

function scaleOf(alpha: number): Scale {
  const lnGamma = Math.log((1 + alpha) / (1 - alpha));
  return { lnGamma, bias: 1 - Math.floor(Math.log(MIN_NORMAL) / lnGamma), lnLow: Math.log(1 - alpha) };
}

const SCALE = scaleOf(ALPHA);
const scale = (s: QuantileSketch) => s.alpha === ALPHA ? SCALE : scaleOf(s.alpha);

export function newSketch(): QuantileSketch {
  return { alpha: ALPHA, keys: [], counts: [] };
}

function keyOf(v: number, sc: Scale): number {
  const m = Math.abs(v);
  if (!(m >= MIN_NORMAL)) return 0;
  const k = Math.ceil(Math.log(m) / sc.lnGamma) + sc.bias;
  return v > 0 ? k : -k;
}

function valueOf(key: number, sc: Scale): number {
  if (key === 0) return 0;
  const m = Math.exp((Math.abs(key) - sc.bias) * sc.lnGamma + sc.lnLow);
  return key > 0 ? m : -m;
}

/** Adds one value: a binary search, and a shift of the lists when its bucket is new (≤ 2,048 entries). */
export function sketchAdd(s: QuantileSketch, v: number): void {
  const key = keyOf(v, scale(s));
  const keys = s.keys;
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (keys[mid]! < key) lo = mid + 1;
    else hi = mid;
  }
  if (keys[lo] === key) {
    s.counts[lo]!++;
    return;
  }
  keys.splice(lo, 0, key);
  s.counts.splice(lo, 0, 1);
  if (keys.length > SKETCH_MAX_BUCKETS) {
    // The lowest bucket goes into the next one up: a high quantile such as p95 keeps its accuracy as
    // long as the values from it upward span fewer buckets than are kept.
    s.counts[1]! += s.counts[0]!;
    keys.shift();
    s.counts.shift();
  }
}

/**
 * The nearest-rank quantile `p` (the rank `percentile()` uses), within `SKETCH_RELATIVE_ERROR` of the
 * exact one; NaN for no values. `min` and `max`, the window's exact extremes, bound the answer: the
 * exact quantile is between them, so the bound only brings the estimate closer.
 */
export function sketchQuantile(s: QuantileSketch, p: number, min = -Infinity, max = Infinity): number {
  let n = 0;
  for (const c of s.counts) n += c;
  if (n === 0) return NaN;
  const rank = Math.min(n, Math.max(1, Math.ceil(p * n)));
  let seen = 0;
  let i = 0;
  while (i < s.keys.length - 1) {
    seen += s.counts[i]!;
    if (seen >= rank) break;
    i++;
  }
  const v = valueOf(s.keys[i]!, scale(s));
  return v < min ? min : v > max ? max : v;
}
