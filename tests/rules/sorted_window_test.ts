/**
 * Differential test of the hand-written window of `robust_zscore` (src/rules/sorted_window.ts)
 * against the straightforward way: the values kept in arrival order, copied and sorted for the median
 * and the MAD. Its bench: tests/bench/fleet_rules_bench.ts.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { SortedWindow } from "../../src/rules/sorted_window.ts";
import { checkProperty } from "../helpers/property.ts";

/** The reference: arrays in arrival order, a sort per question. */
class Reference {
  t: number[] = [];
  v: number[] = [];
  dropUntil(since: number) {
    let i = 0;
    while (i < this.t.length && this.t[i]! <= since) i++;
    this.t.splice(0, i);
    this.v.splice(0, i);
  }
  push(time: number, value: number, max: number) {
    this.t.push(time);
    this.v.push(value);
    const drop = this.v.length - max;
    if (drop > 0) {
      this.t.splice(0, drop);
      this.v.splice(0, drop);
    }
  }
  median(): number {
    return _median(Float64Array.from(this.v).sort());
  }
  mad(median: number): number {
    return _median(Float64Array.from(this.v, (x) => Math.abs(x - median)).sort());
  }
}

function _median(sorted: Float64Array): number {
  const n = sorted.length;
  if (n === 0) return NaN;
  const mid = n >> 1;
  return n % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Values with many duplicates and both zeros, and some of any size. */
const value = fc.oneof(
  fc.constantFrom(0, -0, 1, -1, 20, 20.5, 1e-300, -1e308, 1e308, 5e-324),
  fc.integer({ min: -5, max: 5 }),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
);
const op = fc.oneof(
  fc.record({ push: value, step: fc.integer({ min: 0, max: 3 }) }),
  fc.record({ drop: fc.integer({ min: 0, max: 6 }) }),
);
/**
 * A sensor sampled regularly whose value mostly repeats: the window changes by one value in and the
 * same one out, the case `measure()` answers without walking the window.
 */
const repeating = (push: fc.Arbitrary<number>) =>
  fc.array(
    fc.record({
      push,
      measure: fc.oneof({ weight: 4, arbitrary: fc.constant(true) }, fc.constant(false)),
    }),
    { maxLength: 80 },
  );
/** Mostly one value; or only zeros, where a -0 that replaces a 0 is a change. */
const repeatingStreams = fc.oneof(
  repeating(fc.oneof({ weight: 6, arbitrary: fc.constant(20) }, fc.constantFrom(0, -0, 1, 20.5))),
  repeating(fc.oneof({ weight: 6, arbitrary: fc.constant(0) }, fc.constant(-0))),
);

Deno.test("SortedWindow keeps the same values, median and MAD as copying and sorting, to the bit", () => {
  checkProperty(
    fc.property(
      fc.integer({ min: 1, max: 12 }),
      fc.integer({ min: 1, max: 4 }),
      fc.array(op, { maxLength: 120 }),
      (max, capacity, ops) => {
        const fast = new SortedWindow(0, capacity);
        const ref = new Reference();
        let time = 0;
        for (const o of ops) {
          if ("push" in o) {
            time += o.step;
            fast.push(time, o.push, max);
            ref.push(time, o.push, max);
          } else {
            fast.dropUntil(time - o.drop);
            ref.dropUntil(time - o.drop);
          }
          assert.equal(fast.size, ref.v.length);
          assert.deepEqual(fast.toArrays(), { t: ref.t, v: ref.v });
          const m = ref.median();
          assert.ok(Object.is(fast.median(), m), `median ${fast.median()} against ${m}`);
          assert.ok(Object.is(fast.mad(m), ref.mad(m)), `MAD ${fast.mad(m)} against ${ref.mad(m)}`);
          assert.equal(fast.newest, ref.t.at(-1) ?? -Infinity);
        }
      },
    ),
    300,
  );
});

Deno.test("SortedWindow.measure() gives the median and MAD of copying and sorting, also when it reuses them", () => {
  checkProperty(
    fc.property(
      fc.integer({ min: 1, max: 12 }),
      fc.integer({ min: 1, max: 8 }),
      fc.oneof(
        fc.array(fc.oneof(op, fc.constant({ measure: true })), { maxLength: 120 }),
        repeatingStreams,
      ),
      (max, span, ops) => {
        const fast = new SortedWindow(0);
        const ref = new Reference();
        let time = 0;
        for (const o of ops) {
          if ("push" in o) {
            // Regular samples drop the oldest before each new one, as robust_zscore does.
            time += "step" in o ? o.step : 1;
            if (!("step" in o)) {
              fast.dropUntil(time - span);
              ref.dropUntil(time - span);
            }
            if ("measure" in o && o.measure) _sameMeasure(fast, ref);
            fast.push(time, o.push, max);
            ref.push(time, o.push, max);
          } else if ("drop" in o) {
            fast.dropUntil(time - o.drop);
            ref.dropUntil(time - o.drop);
          } else {
            _sameMeasure(fast, ref);
          }
        }
        _sameMeasure(fast, ref);
      },
    ),
    300,
  );
});

function _sameMeasure(fast: SortedWindow, ref: Reference): void {
  const median = fast.measure();
  const m = ref.median();
  assert.ok(Object.is(median, m), `median ${median} against ${m}`);
  assert.ok(Object.is(fast.measuredMad, ref.mad(m)), `MAD ${fast.measuredMad} against ${ref.mad(m)}`);
}

Deno.test("SortedWindow's median and MAD of a small window, worked by hand", () => {
  const w = new SortedWindow(0);
  [3, 1, 4, 1, 5, 9, 2, 6].forEach((v, i) => w.push(i, v, 512));
  // Sorted 1 1 2 3 4 5 6 9: median 3.5; deviations .5 .5 1.5 1.5 2.5 2.5 2.5 5.5: MAD 2.
  assert.equal(w.median(), 3.5);
  assert.equal(w.mad(3.5), 2);
  w.dropUntil(1); // drops 3 and 1 (times 0, 1): 1 2 4 5 6 9
  assert.equal(w.median(), 4.5);
  assert.equal(w.mad(4.5), 2);
  w.push(8, 100, 6); // the oldest (4) leaves: 1 2 5 6 9 100
  assert.deepEqual(w.toArrays(), { t: [3, 4, 5, 6, 7, 8], v: [1, 5, 9, 2, 6, 100] });
  assert.equal(w.median(), 5.5);
});

/**
 * An event as `robust_zscore` judges and learns it: `turn` when it can, else the separate steps (drop,
 * measure when there are at least `least` values, push unless late). Returns the median, NaN for none.
 */
function advance(w: SortedWindow, time: number, value: number, since: number, max: number, least: number) {
  const measured = w.turn(time, value, since, max);
  if (measured >= 0) return measured >= least ? w.measuredMedian : NaN;
  w.dropUntil(since);
  const median = w.size >= least ? w.measure() : NaN;
  if (time >= w.newest) w.push(time, value, max);
  return median;
}

/**
 * `turn` against the reference doing what `robust_zscore` did before it. Streams of regular samples
 * whose value mostly repeats (the ring turns without touching the sorted values), mixed with changes,
 * both zeros, late events, irregular steps, and the separate calls in between.
 */
Deno.test("SortedWindow.turn() keeps the values, median and MAD of dropping, measuring and adding, to the bit", () => {
  const step = fc.record({
    value: fc.oneof(
      { weight: 8, arbitrary: fc.constant(20) },
      fc.constantFrom(0, -0, 20.5, 1e308, -1e308, 5e-324),
      fc.double({ noNaN: true, noDefaultInfinity: true }),
    ),
    // Mostly one sample per period; some late, some two at the same time, some after a gap.
    dt: fc.oneof({ weight: 12, arbitrary: fc.constant(10) }, fc.constantFrom(-25, -10, 0, 1, 9, 11, 35)),
    least: fc.oneof({ weight: 6, arbitrary: fc.constant(5) }, fc.constantFrom(1, 2, 4, 6, Infinity)),
    // Now and then as many values as the window keeps after the drop: the new one pushes one out.
    fewer: fc.oneof({ weight: 12, arbitrary: fc.constant(false) }, fc.constant(true)),
    also: fc.oneof(
      { weight: 20, arbitrary: fc.constant("none" as const) },
      fc.constantFrom("measure" as const, "push" as const, "drop" as const),
    ),
  });
  checkProperty(
    fc.property(
      fc.integer({ min: 1, max: 12 }),
      fc.integer({ min: 1, max: 4 }),
      fc.constantFrom(10, 35, 40, 50, 60, 61),
      // Values pushed first without a drop (as a checkpoint is read back), older than the window.
      fc.array(fc.record({ dt: fc.integer({ min: 0, max: 12 }), value: fc.constantFrom(20, 0, -0, 7) }), {
        maxLength: 12,
      }),
      fc.array(step, { maxLength: 150 }),
      (most, capacity, span, pushed, steps) => {
        const fast = new SortedWindow(0, capacity);
        const ref = new Reference();
        let time = 0;
        for (const p of pushed) {
          time += p.dt;
          fast.push(time, p.value, most);
          ref.push(time, p.value, most);
        }
        for (const [i, s] of steps.entries()) {
          time += s.dt;
          const since = time - span;
          ref.dropUntil(since);
          // `push` drops one value at most: a window holds at most `max` values when it is called.
          const max = s.fewer ? Math.max(1, ref.v.length) : most;
          const got = advance(fast, time, s.value, since, max, s.least);
          const median = ref.v.length >= s.least ? ref.median() : NaN;
          assert.ok(Object.is(got, median), `step ${i}: median ${got} against ${median}`);
          if (!Number.isNaN(median)) {
            assert.ok(Object.is(fast.measuredMad, ref.mad(median)), `step ${i}: MAD`);
          }
          // A late event is judged, not learnt.
          if (time >= (ref.t.at(-1) ?? -Infinity)) ref.push(time, s.value, max);
          if (s.also === "measure" && ref.v.length > 0) _sameMeasure(fast, ref);
          // A value ahead of the next events, after a measure: they are late, though the window may
          // have to drop one value the same as theirs.
          if (s.also === "push" && time + 15 >= (ref.t.at(-1) ?? -Infinity)) {
            if (ref.v.length > 0) _sameMeasure(fast, ref);
            fast.push(time + 15, s.value, max);
            ref.push(time + 15, s.value, max);
          }
          if (s.also === "drop") {
            fast.dropUntil(since + 10);
            ref.dropUntil(since + 10);
          }
          assert.deepEqual(fast.toArrays(), { t: ref.t, v: ref.v }, `step ${i}`);
          assert.equal(fast.newest, ref.t.at(-1) ?? -Infinity);
        }
      },
    ),
    500,
  );
});

Deno.test("SortedWindow.turn() of a periodic value: the one that leaves comes back, not the one before it", () => {
  // A period of as many samples as the window keeps: each value is the one leaving, and differs from
  // the one that came in last, whose median and MAD were not measured without the one leaving.
  for (const period of [1, 2, 3, 5, 6, 7]) {
    for (const span of [50, 60, 70]) {
      const fast = new SortedWindow(0);
      const ref = new Reference();
      for (let k = 0; k < 40; k++) {
        const time = 10 * k;
        const x = [20, 0, -0, 21, 20, 19, 0][k % period]!;
        const got = advance(fast, time, x, time - span, 512, 5);
        ref.dropUntil(time - span);
        const median = ref.v.length >= 5 ? ref.median() : NaN;
        assert.ok(
          Object.is(got, median),
          `period ${period}, span ${span}, event ${k}: ${got} against ${median}`,
        );
        if (!Number.isNaN(median)) assert.ok(Object.is(fast.measuredMad, ref.mad(median)));
        ref.push(time, x, 512);
        assert.deepEqual(fast.toArrays(), { t: ref.t, v: ref.v });
      }
    }
  }
});
