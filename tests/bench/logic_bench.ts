/**
 * Compiled JSON-Logic with map, filter and reduce against json-logic-js's interpreter, on one event
 * whose metadata holds 32 readings: what a rule over a metadata array costs per event.
 */
import { compileLogic } from "../../src/rules/logic.ts";
import { applyLogic } from "../../src/rules/operations.ts";

const ACC = { var: "accumulator" };
const CUR = { var: "current" };
/** Sum of the doubled readings above 5, and the readings collected into an array. */
const EXPR = {
  and: [
    {
      ">": [{
        reduce: [
          {
            map: [{ filter: [{ var: "metadata.items" }, { ">": [{ var: "" }, 5] }] }, {
              "*": [{ var: "" }, 2],
            }],
          },
          { "+": [ACC, CUR] },
          0,
        ],
      }, 10],
    },
    { reduce: [{ var: "metadata.items" }, { merge: [ACC, [CUR]] }, []] },
  ],
};
const DATA = { value: 20, metadata: { items: Array.from({ length: 32 }, (_, i) => i % 10) } };
const compiled = compileLogic(EXPR);

Deno.bench(
  "map/filter/reduce over 32 metadata items: json-logic-js",
  { group: "logic", baseline: true },
  () => {
    applyLogic(EXPR, DATA);
  },
);
Deno.bench("map/filter/reduce over 32 metadata items: compiled", { group: "logic" }, () => {
  compiled(DATA);
});
