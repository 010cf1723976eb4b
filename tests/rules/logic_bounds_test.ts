/**
 * A rule's `reduce` runs once per item of an array the event carries (metadata holds up to 256 entries,
 * src/decode/bounds.ts). A body that doubles its accumulator makes that count an exponent: with 64 items,
 * `merge` of the accumulator with itself ran the heap out (V8 OOM kills the process, the record is read
 * again on restart: the partition stalls), `cat` reached 2^29 characters before a RangeError, and an
 * array literal `[acc, acc]` built 2^64 leaves in 64 steps that any string or number conversion then
 * walks. The reduce must stop at its bound with an error naming it, wherever it sits in the rule; a
 * reduce under the bound gives what json-logic-js gives.
 */
import assert from "node:assert/strict";
import type { SensorEvent } from "../../src/contract/schemas.ts";
import { emptyOutput } from "../../src/rules/engine.ts";
import { compileLogic } from "../../src/rules/logic.ts";
import { applyLogic } from "../../src/rules/operations.ts";
import { engine, ev, T0 } from "../helpers/engine.ts";

const ITEMS = { var: "metadata.items" };
const ACC = { var: "accumulator" };
const CUR = { var: "current" };
/** The reduce's own weighing, or a merge or cat in its body, whichever bound the step crosses first. */
const BOUND =
  /reduce: (the accumulator|step \d+: (merge|cat): the \w+) grew past 1,000,000 items or characters/;

const MERGE_BOMB = { reduce: [ITEMS, { merge: [ACC, ACC] }, [1]] };
const CAT_BOMB = { reduce: [ITEMS, { cat: [ACC, ACC] }, "x"] };
const DAG_BOMB = { reduce: [ITEMS, [ACC, ACC], 0] };

function withMetadata(metadata: Record<string, unknown>): SensorEvent {
  return { ...ev("temp-001", 20), metadata } as SensorEvent;
}

const SIXTY_FOUR = withMetadata({ items: Array.from({ length: 64 }, (_, i) => i) });

/** Runs one event through an engine holding one rule with this condition: the rule's errors and alerts. */
function judge(condition: unknown, event: SensorEvent = SIXTY_FOUR) {
  const e = engine(`rules:
  - id: bomb
    sensor_type: temperature
    condition: ${JSON.stringify(condition)}
    priority: low
`);
  const out = emptyOutput();
  e.onEvent(event, T0, out);
  return {
    errors: out.errors.map((x) => `${x.rule.rule.id}: ${x.error.message}`),
    alerts: out.alerts.length,
  };
}

function assertBounded(condition: unknown, bound = BOUND, event?: SensorEvent): void {
  const { errors, alerts } = judge(condition, event);
  assert.equal(errors.length, 1, `one error for ${JSON.stringify(condition)}: ${errors.join("; ")}`);
  assert.match(errors[0]!, bound);
  assert.equal(alerts, 0);
}

Deno.test("a reduce that merges its accumulator with itself stops at the bound instead of 2^64 items", () => {
  assertBounded({ ">": [MERGE_BOMB, 0] });
});

Deno.test("a reduce that cats its accumulator with itself stops at the bound instead of 2^64 characters", () => {
  assertBounded({ "==": [CAT_BOMB, "x"] });
});

Deno.test("a reduce that nests its accumulator twice stops at the bound before anything converts it", () => {
  // The DAG costs O(steps) to build; `==` converts it to a string, which walks all 2^64 leaves.
  assertBounded({ "==": [DAG_BOMB, "x"] });
  assertBounded({ cat: [DAG_BOMB] });
  assertBounded({ "<": [DAG_BOMB, 1] });
});

Deno.test("the bound holds for a reduce nested in map, filter, some, merge, cat, substr, ! and if", () => {
  const inner = { reduce: [{ var: "" }, { merge: [ACC, ACC] }, [1]] };
  assertBounded({ some: [{ map: [[ITEMS], inner] }, { var: "" }] });
  assertBounded({ some: [[ITEMS], { "!": inner }] });
  assertBounded({ "!": { filter: [[ITEMS], { ">": [inner, 0] }] } });
  assertBounded({ "!": { all: [[ITEMS], { "!": inner }] } });
  assertBounded({ "!": { none: [[ITEMS], inner] } });
  assertBounded({ "!": { merge: [1, MERGE_BOMB] } });
  assertBounded({ "==": [{ cat: ["a", CAT_BOMB] }, "a"] });
  assertBounded({ "==": [{ substr: [CAT_BOMB, 1] }, "a"] });
  assertBounded({ "!": MERGE_BOMB });
  assertBounded({ if: [{ "!": DAG_BOMB }, true, false] });
  assertBounded({ "!": { reduce: [[ITEMS], { "+": [ACC, { "!": { reduce: [CUR, [ACC, ACC], 0] } }] }, 0] } });
});

Deno.test("a reduce written into the event's data and run through missing is bounded too", () => {
  // json-logic-js's `missing` evaluates each key as logic against the data: keys from the event are code.
  const event = withMetadata({ items: SIXTY_FOUR.metadata.items, keys: [MERGE_BOMB] });
  assertBounded({ "!": { missing: { var: "metadata.keys" } } }, BOUND, event);
  assertBounded({ "!": { missing_some: [1, { var: "metadata.keys" }] } }, BOUND, event);
});

Deno.test("map, merge and cat have the same bound on what they build", () => {
  // Thirteen rows of eighteen: each row's reduce is a DAG of 524,286 leaves, under the bound, and the
  // map of them over it (247 metadata entries, within decode's 256).
  const rows = withMetadata({ rows: Array.from({ length: 13 }, () => Array.from({ length: 18 }, () => 0)) });
  const row = { reduce: [{ var: "" }, [ACC, ACC], 0] };
  assertBounded({ "==": [{ map: [{ var: "metadata.rows" }, row] }, "x"] }, /map: .*1,000,000/, rows);
  // Nineteen doublings: 524,288 items or characters each, under the bound; two of them side by side are over.
  const nineteen = withMetadata({ items: Array.from({ length: 19 }, (_, i) => i) });
  assert.deepEqual(judge({ "!": MERGE_BOMB }, nineteen).errors, []);
  assertBounded({ "!": { merge: [MERGE_BOMB, MERGE_BOMB] } }, /merge: .*1,000,000/, nineteen);
  assertBounded({ "!": { cat: [CAT_BOMB, CAT_BOMB] } }, /cat: .*1,000,000/, nineteen);
  // Two DAGs of 2^19 leaves each, weighed before the string is made.
  const eighteen = withMetadata({ items: Array.from({ length: 18 }, (_, i) => i) });
  assertBounded({ "!": { cat: [DAG_BOMB, DAG_BOMB] } }, /cat: .*1,000,000/, eighteen);
});

Deno.test("legit reduces (sum, count, collect a few thousand items) give json-logic-js's results", () => {
  const data = { metadata: { items: Array.from({ length: 250 }, (_, i) => i) } };
  const exprs = [
    { reduce: [ITEMS, { "+": [ACC, CUR] }, 0] },
    { reduce: [ITEMS, { "+": [ACC, 1] }, 0] },
    { reduce: [ITEMS, { merge: [ACC, [CUR, CUR, CUR, CUR, CUR, CUR, CUR, CUR, CUR, CUR]] }, []] },
    { reduce: [ITEMS, { cat: [ACC, CUR] }, ""] },
    { reduce: [ITEMS, [ACC, CUR], null] },
    { reduce: [ITEMS, { if: [{ ">": [CUR, ACC] }, CUR, ACC] }] },
    { reduce: [{ var: "metadata.none" }, { "+": [ACC, CUR] }, 7] },
  ];
  for (const expr of exprs) {
    assert.deepStrictEqual(compileLogic(expr)(data), applyLogic(expr, data), JSON.stringify(expr));
  }
  assert.equal((compileLogic(exprs[2])(data) as unknown[]).length, 2500);
  const { errors, alerts } = judge(
    { ">": [{ reduce: [ITEMS, { "+": [ACC, CUR] }, 0] }, 2000] },
    withMetadata(data.metadata),
  );
  assert.deepEqual(errors, []);
  assert.equal(alerts, 1);
});
