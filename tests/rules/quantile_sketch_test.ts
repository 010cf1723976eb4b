/**
 * Differential test of the hand-written quantile sketch behind `p95` (src/rules/quantile_sketch.ts)
 * against the exact nearest-rank `percentile()` of the same values: within 1% of it whatever the
 * distribution (negatives, zeros, duplicates, values over 16 orders of magnitude), as long as the
 * values span at most the sketch's buckets; its buckets never more than SKETCH_MAX_BUCKETS.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  newSketch,
  SKETCH_MAX_BUCKETS,
  SKETCH_RELATIVE_ERROR,
  sketchAdd,
  sketchQuantile,
} from "../../src/rules/quantile_sketch.ts";
import { percentile } from "../../src/rules/windows.ts";
import { checkProperty } from "../helpers/property.ts";

function sketchOf(values: readonly number[]) {
  const s = newSketch();
  for (const v of values) sketchAdd(s, v);
  return s;
}

function assertClose(estimate: number, exact: number, what: string): void {
  assert.ok(
    Math.abs(estimate - exact) <= SKETCH_RELATIVE_ERROR * Math.abs(exact),
    `${what}: ${estimate} against the exact ${exact}`,
  );
}

/** A magnitude between 10^lo and 10^hi, log-uniform: every order of magnitude as likely. */
const magnitude = (lo: number, hi: number) =>
  fc.double({ min: lo, max: hi, noNaN: true }).map((e) => Math.pow(10, e));
const signed = (m: fc.Arbitrary<number>) =>
  fc.tuple(m, fc.boolean()).map(([v, negative]) => (negative ? -v : v));

/** Arrays of any length up to `max` (fast-check's default size would keep them under ~10 values). */
const many = (g: fc.Arbitrary<number>, max = 3000) =>
  fc.array(g, { minLength: 1, maxLength: max, size: "max" });

const distributions = fc.oneof(
  // Readings of a sensor: few distinct values, many duplicates.
  many(fc.integer({ min: -40, max: 60 })),
  // Readings with decimals, zeros among them.
  many(fc.oneof(fc.constant(0), fc.integer({ min: -50_000, max: 50_000 }).map((v) => v / 1000))),
  // Both signs over 8 orders of magnitude each (1,862 buckets with both signs).
  many(signed(magnitude(-2, 6))),
  // One sign over 16 orders of magnitude (1,861 buckets).
  many(magnitude(-6, 10)),
  many(magnitude(-6, 10).map((v) => -v)),
  // The largest and smallest normal magnitudes beside ordinary readings.
  many(
    fc.oneof(
      fc.integer({ min: -100, max: 100 }),
      fc.constantFrom(1.7976931348623157e308, -1.7976931348623157e308, 2.2250738585072014e-308),
    ),
    500,
  ),
);

Deno.test("sketchQuantile() is within 1% of the exact nearest-rank percentile, at p95 and elsewhere", () => {
  checkProperty(
    fc.property(distributions, fc.constantFrom(0.95, 0.95, 0.5, 0.99, 0.01, 1), (values, p) => {
      const s = sketchOf(values);
      assert.ok(s.keys.length <= SKETCH_MAX_BUCKETS);
      const exact = percentile(values, p);
      const min = Math.min(...values);
      const max = Math.max(...values);
      assertClose(sketchQuantile(s, p, min, max), exact, `p${p * 100} of ${values.length}`);
    }),
    200,
  );
});

Deno.test("the sketch survives JSON as it is: the same buckets and answers after a round trip", () => {
  checkProperty(
    fc.property(distributions, (values) => {
      const s = sketchOf(values);
      const back = JSON.parse(JSON.stringify(s));
      assert.deepEqual(back, s);
      assert.equal(sketchQuantile(back, 0.95), sketchQuantile(s, 0.95));
    }),
    50,
  );
});

Deno.test("a sketch whose values span more buckets than it keeps merges the lowest: p95 stays within 1%", () => {
  // 100,000 values: a low tail of 5,000 distinct magnitudes down to -1e300 (far more buckets than
  // kept), the rest readings from 10 to 100.
  const values: number[] = [];
  for (let i = 0; i < 5000; i++) values.push(-Math.pow(10, (i / 5000) * 300));
  for (let i = 0; i < 95_000; i++) values.push(10 + (i % 9000) / 100);
  const s = sketchOf(values);
  assert.equal(s.keys.length, SKETCH_MAX_BUCKETS);
  assertClose(sketchQuantile(s, 0.95), percentile(values, 0.95), "p95");
  assert.equal(s.counts.reduce((a, b) => a + b, 0), values.length, "no value lost, only merged");
});

Deno.test("sketchQuantile() of no values is NaN; one value is itself within 1%, exactly within [min, max]", () => {
  assert.ok(Number.isNaN(sketchQuantile(newSketch(), 0.95)));
  const s = sketchOf([23.5]);
  assertClose(sketchQuantile(s, 0.95), 23.5, "one value");
  assert.equal(sketchQuantile(s, 0.95, 23.5, 23.5), 23.5);
  assert.equal(sketchQuantile(sketchOf([0, 0, 0]), 0.95), 0);
});
