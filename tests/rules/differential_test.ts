/**
 * Threshold rules are evaluated natively, not through json-logic-js. This proves the two agree:
 * generated thresholds × generated values, same verdicts as json-logic-js on the compiled logic.
 */
import assert from "node:assert/strict";
import jsonLogic from "json-logic-js";
import { compileRule } from "../../src/rules/compile.ts";
import { prng } from "../../src/simulator/sensors.ts";
import { Rule } from "../../src/rules/schema.ts";

Deno.test("native threshold evaluation agrees with json-logic-js on generated rules and events", () => {
  const rand = prng(42);
  const pick = () => Math.round((rand() * 200 - 100) * 4) / 4;
  let fired = 0;
  let checked = 0;
  for (let r = 0; r < 300; r++) {
    const a = pick();
    const b = pick();
    const shape = r % 3;
    const threshold = shape === 0
      ? { min: Math.min(a, b), max: Math.max(a, b) }
      : shape === 1
      ? { min: a }
      : { max: a };
    const compiled = compileRule(
      Rule.parse({ id: `r${r}`, priority: "low", threshold }),
      { file: "gen", line: 1, column: 1 },
    );
    const values = [
      a,
      b,
      a - 0.25,
      a + 0.25,
      b - 0.25,
      b + 0.25,
      0,
      -1e9,
      1e9,
      ...Array.from({ length: 20 }, pick),
    ];
    for (const value of values) {
      const native = compiled.test({ value }) !== null;
      const reference = jsonLogic.truthy(jsonLogic.apply(compiled.logic as never, { value }));
      assert.equal(native, reference, `threshold ${JSON.stringify(threshold)} value ${value}`);
      if (native) fired++;
      checked++;
    }
  }
  assert.ok(fired > checked / 10 && fired < checked, "the generated cases both fire and don't");
});

Deno.test("custom operations evaluate through json-logic-js as documented", async () => {
  await import("../../src/rules/operations.ts");
  assert.equal(jsonLogic.apply({ between: [{ var: "v" }, 1, 3] }, { v: 2 }), true);
  assert.equal(jsonLogic.apply({ between: [{ var: "v" }, 1, 3] }, { v: 4 }), false);
  assert.equal(jsonLogic.apply({ abs: [{ var: "v" }] }, { v: -2.5 }), 2.5);
  assert.equal(jsonLogic.apply({ hour_of_day: [{ var: "t" }] }, { t: "2026-11-25T21:15:00" }), 21);
  assert.equal(jsonLogic.apply({ hour_of_day: [{ var: "t" }] }, { t: "2026-11-25T21:15:00+03:00" }), 18);
});
