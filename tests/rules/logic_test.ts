/**
 * Compiled JSON-Logic against json-logic-js itself: generated expressions × generated events give the
 * same results (values, not just truthiness), and throw alike.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import jsonLogic from "json-logic-js";
import {
  compileLogic,
  compileWithDeadlineChecks,
  logicTruthy,
  withLogicDeadline,
} from "../../src/rules/logic.ts";
import { applyLogic } from "../../src/rules/operations.ts";
import { checkProperty } from "../helpers/property.ts";

const VARS = [
  "value",
  "unit",
  "sensor_id",
  "sensor_type",
  "location",
  "metadata",
  "metadata.battery_level",
  "metadata.firmware_version",
  "metadata.missing",
  "metadata.nested.x",
  "value.toFixed",
  "timestamp",
  "nope",
  "",
  0,
];

const literal = fc.oneof(
  fc.double({ noDefaultInfinity: true }),
  fc.integer({ min: -5, max: 100 }),
  fc.constantFrom(0, -0, 1, 35, "", "0", "1", "35", " 2.5 ", "abc", "1.2.3", "0.9.0", true, false, null),
  fc.string({ maxLength: 4 }),
);

/** What map, filter, all, none, some and reduce run over: the event's list, literals, anything. */
const LISTS = [{ var: "metadata.list" }, { var: "metadata.nested" }, { var: "metadata" }, [[], [0], 2]];
/** Bodies that read the item (`{"var": ""}`) and reduce bodies that read `current` and `accumulator`. */
const ITEM = { var: "" };
const ACC = { var: "accumulator" };
const CUR = { var: "current" };
const itemBody = fc.constantFrom(
  { ">": [ITEM, 1] },
  { "+": [ITEM, 1] },
  ITEM,
  { var: "0" },
  { cat: [ITEM, "-"] },
  { merge: [ITEM, [ITEM]] },
  { reduce: [ITEM, { "+": [ACC, CUR] }, 0] },
  { some: [ITEM, { "==": [ITEM, 1] }] },
  { map: [ITEM, ITEM] },
);
const stepBody = fc.constantFrom(
  { "+": [ACC, CUR] },
  { "*": [ACC, CUR] },
  { merge: [ACC, [CUR]] },
  { merge: [ACC, CUR] },
  { cat: [ACC, CUR] },
  [ACC, CUR],
  { if: [{ ">": [CUR, ACC] }, CUR, ACC] },
  CUR,
  ACC,
  { map: [CUR, { "+": [ITEM, 1] }] },
);

const { expr } = fc.letrec<{ expr: unknown }>((tie) => {
  const arg = tie("expr");
  const list = fc.oneof(fc.constantFrom(...LISTS), fc.array(literal, { maxLength: 4 }), arg);
  const args = (min: number, max: number) => fc.array(arg, { minLength: min, maxLength: max });
  const op = (name: string, min: number, max: number) => args(min, max).map((a) => ({ [name]: a }));
  return {
    expr: fc.oneof(
      { depthSize: "small", withCrossShrink: true },
      literal,
      fc.constantFrom(...VARS).map((v) => ({ var: v })),
      fc.tuple(fc.constantFrom(...VARS), arg).map(([v, dflt]) => ({ var: [v, dflt] })),
      fc.constantFrom(...VARS).map((v) => ({ var: [v] })),
      op("==", 2, 2),
      op("===", 2, 2),
      op("!=", 2, 2),
      op("!==", 2, 2),
      op(">", 2, 2),
      op(">=", 2, 2),
      op("<", 2, 3),
      op("<=", 2, 3),
      op("!", 1, 1),
      op("!!", 1, 1),
      arg.map((a) => ({ "!": a })),
      op("and", 1, 4),
      op("or", 1, 4),
      op("if", 1, 5),
      op("?:", 3, 3),
      op("+", 1, 3),
      op("-", 1, 2),
      op("*", 1, 3),
      op("/", 2, 2),
      op("%", 2, 2),
      op("min", 1, 3),
      op("max", 1, 3),
      fc.tuple(arg, fc.oneof(fc.array(literal, { maxLength: 4 }), fc.string({ maxLength: 6 }), arg)).map((
        [x, list],
      ) => ({ in: [x, list] })),
      op("between", 3, 3),
      op("abs", 1, 1),
      op("hour_of_day", 1, 1),
      op("cat", 0, 3),
      op("merge", 0, 2),
      ...["map", "filter", "all", "none", "some"].map((name) =>
        fc.tuple(list, fc.oneof(itemBody, arg)).map(([x, f]) => ({ [name]: [x, f] }))
      ),
      fc.tuple(list, fc.oneof(stepBody, arg), fc.option(arg, { nil: undefined })).map(([x, f, init]) => ({
        reduce: init === undefined ? [x, f] : [x, f, init],
      })),
      op("substr", 2, 3),
      arg.map((a) => ({ var: a })),
      op("missing", 0, 3),
      fc.array(fc.constantFrom(...VARS), { maxLength: 3 }).map((keys) => ({ missing: keys })),
      fc.tuple(arg, fc.oneof(arg, fc.array(fc.constantFrom(...VARS), { maxLength: 3 }))).map((
        [need, keys],
      ) => ({
        missing_some: [need, keys],
      })),
      fc.array(arg, { maxLength: 3 }),
      fc.constantFrom({}, { a: 1, b: 2 }),
    ),
  };
});

const event = fc.record({
  value: fc.oneof(fc.double({ noDefaultInfinity: true, noNaN: true }), fc.integer({ min: -50, max: 2000 })),
  unit: fc.constantFrom("°C", "", "ppm"),
  sensor_id: fc.constantFrom("temp-001", "co2-g00012", "1"),
  sensor_type: fc.constantFrom("temperature", "co2"),
  timestamp: fc.constantFrom("2026-11-25T21:15:00", "2026-11-25T21:15:00+03:00", "nonsense"),
  location: fc.constantFrom("Building A, Floor 1", null, ""),
  metadata: fc.record({
    battery_level: fc.oneof(fc.integer({ min: 0, max: 100 }), fc.constantFrom("15", null, true)),
    firmware_version: fc.constantFrom("1.2.3", "0.9.0", 1),
    nested: fc.constantFrom({ x: 1 }, { x: null }, null, [1, 2], [[1, 2], [3], []]),
    list: fc.array(fc.oneof(literal, fc.array(literal, { maxLength: 3 })), { maxLength: 5 }),
  }, { requiredKeys: [] }),
}, { requiredKeys: ["value", "sensor_id", "sensor_type"] });

function outcome(f: () => unknown): { value: unknown } | { threw: string } {
  try {
    return { value: f() };
  } catch (err) {
    return { threw: (err as Error).constructor.name };
  }
}

Deno.test("compiled JSON-Logic returns what json-logic-js returns on generated expressions and events", () => {
  let truthy = 0;
  let runs = 0;
  checkProperty(
    fc.property(expr, fc.array(event, { minLength: 1, maxLength: 5 }), (e, events) => {
      const compiled = compileLogic(e);
      for (const data of events) {
        const mine = outcome(() => compiled(data));
        const reference = outcome(() => applyLogic(e, data));
        assert.deepStrictEqual(mine, reference, `${JSON.stringify(e)} on ${JSON.stringify(data)}`);
        if ("value" in mine) {
          assert.equal(logicTruthy(mine.value), jsonLogic.truthy(mine.value));
          if (logicTruthy(mine.value)) truthy++;
        }
        runs++;
      }
    }),
    3000,
  );
  assert.ok(truthy > runs / 10 && truthy < runs, `both outcomes occur (${truthy} truthy of ${runs})`);
});

Deno.test("JSON-Logic compiled for the what-if (a step count and weighed arrays) returns what json-logic-js returns", () => {
  checkProperty(
    fc.property(expr, fc.array(event, { minLength: 1, maxLength: 5 }), (e, events) => {
      const compiled = compileWithDeadlineChecks(() => compileLogic(e));
      for (const data of events) {
        let mine: unknown;
        const expired = withLogicDeadline(
          performance.now() + 60_000,
          () => mine = outcome(() => compiled(data)),
        );
        assert.equal(expired, false);
        assert.deepStrictEqual(mine, outcome(() => applyLogic(e, data)), JSON.stringify(e));
      }
    }),
    1000,
  );
});

Deno.test("compiled JSON-Logic agrees with json-logic-js on the shipped and generated rule shapes", () => {
  const conditions = [
    { "or": [{ "<": [{ "var": "value" }, 10] }, { ">": [{ "var": "value" }, 35] }] },
    {
      "and": [{ ">": [{ "var": "value" }, 35] }, { "==": [{ "var": "metadata.firmware_version" }, "0.9.0"] }],
    },
    { "<": [{ "var": "metadata.battery_level" }, 15] },
    { "between": [{ "var": "value" }, 10, 35] },
    { "in": [{ "var": "sensor_id" }, ["temp-001", "temp-002"]] },
    { "var": ["metadata.missing", 42] },
  ];
  const data = [
    { value: 5, metadata: { firmware_version: "0.9.0", battery_level: 10 }, sensor_id: "temp-001" },
    { value: 40, metadata: { firmware_version: "0.9.0", battery_level: "20" }, sensor_id: "x" },
    { value: 20, metadata: {} },
    {},
  ];
  for (const c of conditions) {
    for (const d of data) assert.deepStrictEqual(compileLogic(c)(d), applyLogic(c, d), JSON.stringify(c));
  }
});
