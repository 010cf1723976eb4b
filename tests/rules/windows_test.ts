import assert from "node:assert/strict";
import fc from "fast-check";
import { emptyOutput, RuleEngine } from "../../src/rules/engine.ts";
import { percentile } from "../../src/rules/windows.ts";
import { ev, ruleSet, T0 } from "../helpers/engine.ts";

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

Deno.test("a window's avg of values whose sum overflows is their mean, not Infinity (null in JSON, an alert's value 0)", () => {
  const e = new RuleEngine();
  e.setRules(ruleSet(`
rules:
  - id: huge-avg
    sensor_type: temperature
    window: { type: count, size: 2 }
    threshold: { max: 30 }
    value_of: avg
    publish: true
    priority: high
`));
  const out = emptyOutput();
  e.onEvent(ev("t1", 1e308), T0, out);
  e.onEvent(ev("t1", 1e308), T0 + 1, out);
  assert.equal(out.aggregates.length, 1);
  assert.equal(out.aggregates[0]!.avg_value, 1e308);
  assert.deepEqual(out.alerts.map((a) => a.value), [1e308]);
});
