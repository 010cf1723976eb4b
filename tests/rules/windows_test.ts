import assert from "node:assert/strict";
import fc from "fast-check";
import { percentile } from "../../src/rules/windows.ts";

Deno.test("percentile() gives the nearest rank: the smallest value with at least p of the values at or below it", () => {
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: -1000, max: 1000 }), { minLength: 1, maxLength: 200 }),
      fc.constantFrom(0.01, 0.5, 0.95, 0.99, 1),
      (values, p) => {
        const r = percentile(values, p);
        const rank = Math.max(1, Math.ceil(p * values.length));
        assert.ok(values.includes(r));
        assert.ok(values.filter((v) => v <= r).length >= rank);
        assert.ok(values.filter((v) => v < r).length < rank);
      },
    ),
    { numRuns: 300 },
  );
});

Deno.test("percentile() of no values is NaN", () => {
  assert.ok(Number.isNaN(percentile([], 0.95)));
});
