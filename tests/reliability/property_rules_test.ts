/**
 * parseRuleFile() is the boundary between a rule file someone is typing and the engine: whatever the
 * text, it returns rules or located problems, and never throws (hot reload must survive a half-saved file).
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { stringify } from "yaml";
import { parseRuleFile, type RuleFileResult } from "../../src/rules/load.ts";
import { checkProperty } from "../helpers/property.ts";

function assertLocated(r: RuleFileResult, file: string, text: string): void {
  const lines = text.split(/\r\n|\r|\n/).length;
  for (const p of r.problems) {
    assert.equal(p.file, file);
    assert.ok(Number.isInteger(p.line) && p.line >= 1 && p.line <= lines + 1, `line ${p.line} of ${lines}`);
    assert.ok(Number.isInteger(p.column) && p.column >= 1, `column ${p.column}`);
    assert.equal(typeof p.message, "string");
    assert.ok(p.message.length > 0);
  }
  // A file is all or nothing.
  if (r.problems.length > 0) assert.equal(r.rules.length, 0);
}

/** Pieces of rule files and of YAML's syntax, so random text gets past the parser often enough. */
const FRAGMENTS = [
  "rules:",
  "  - id: r1",
  "  - id: r1",
  "    sensor_type: temperature",
  "    sensor_type: [co2, humidity]",
  "    threshold: { min: 10, max: 35 }",
  "    threshold: { max: ",
  '    condition: { ">": [{ var: value }, 80] }',
  "    condition: { bteween: [1] }",
  "    priority: high",
  "    priority: urgent",
  '    message: "{{sensor_id}} {{nope}}"',
  "    window: { type: tumbling, size: 5m }",
  "    absent_for: 5m",
  "    for: 10x",
  "- ",
  ": ",
  "  ",
  "\t",
  "&a ",
  "*a",
  "*b",
  "!!binary ",
  "!!str ",
  "[",
  "]",
  "{",
  "}",
  "'",
  '"',
  "# comment",
  "---",
  "...",
  "|",
  ">-",
  "? ",
  "%YAML 1.2",
  "<<: *a",
];
const yamlishText = fc.array(
  fc.oneof(fc.constantFrom(...FRAGMENTS), fc.string({ maxLength: 8 }), fc.constantFrom("\n", "\r\n")),
  { maxLength: 40 },
).map((parts) => parts.join(""));

Deno.test("parseRuleFile() never throws on YAML-ish text and locates every problem at line and column ≥ 1", () => {
  checkProperty(
    fc.property(yamlishText, (text) => {
      assertLocated(parseRuleFile("rules/fuzz.yaml", text), "rules/fuzz.yaml", text);
    }),
    400,
  );
});

Deno.test("parseRuleFile() never throws on arbitrary text", () => {
  checkProperty(
    fc.property(fc.string({ unit: "binary", maxLength: 300 }), (text) => {
      assertLocated(parseRuleFile("x.yaml", text), "x.yaml", text);
    }),
    300,
  );
});

const OPERATIONS = [
  "var",
  "==",
  "!=",
  "!",
  "and",
  "or",
  "if",
  ">",
  "<",
  "<=",
  "+",
  "-",
  "/",
  "%",
  "in",
  "cat",
  "map",
  "reduce",
  "some",
  "missing",
  "between",
  "abs",
  "hour_of_day",
  // Not operations: the compiler must refuse them with the path.
  "bteween",
  "method",
  "log",
  "__proto__",
  "constructor",
];
const VARS = ["value", "sensor_id", "metadata.battery_level", "timestamp", "avg", "nope", "", "value.x"];

/** JSON-Logic-shaped trees: operations (known and not) with any number of arguments, vars, literals. */
const { tree } = fc.letrec((tie) => ({
  tree: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.oneof(
      fc.integer(),
      fc.double({ noNaN: true }),
      fc.string({ maxLength: 6 }),
      fc.boolean(),
      fc.constant(null),
    ),
    fc.record({ var: fc.constantFrom(...VARS) }),
    fc.tuple(fc.constantFrom(...OPERATIONS), fc.array(tie("tree"), { maxLength: 4 }), fc.boolean()).map((
      [op, args, unwrap],
    ) => ({ [op]: unwrap && args.length === 1 ? args[0] : args })),
    fc.array(tie("tree"), { maxLength: 3 }),
    fc.dictionary(fc.constantFrom(...OPERATIONS), tie("tree"), { minKeys: 0, maxKeys: 3 }),
  ),
}));

Deno.test("parseRuleFile() never throws on arbitrary JSON-Logic trees and locates every problem", () => {
  const rule = fc.record({
    where: fc.constantFrom("condition", "clear", "match"),
    windowed: fc.boolean(),
    expr: tree,
    style: fc.constantFrom("yaml", "json"),
  });
  checkProperty(
    fc.property(fc.array(rule, { minLength: 1, maxLength: 3 }), (rules) => {
      const doc = {
        rules: rules.map((r, i) => ({
          id: `rule-${i}`,
          sensor_type: "temperature",
          priority: "high",
          ...(r.where === "condition"
            ? {}
            : { condition: { ">": [{ var: r.windowed ? "avg" : "value" }, 1] } }),
          ...(r.windowed ? { window: { type: "tumbling", size: "1m" } } : {}),
          [r.where]: r.expr,
        })),
      };
      const text = rules[0]!.style === "json" ? JSON.stringify(doc, null, 1) : stringify(doc);
      const result = parseRuleFile("rules/logic.yaml", text);
      assertLocated(result, "rules/logic.yaml", text);
      for (const p of result.problems) assert.match(p.rule_id ?? "", /^rule-\d$/);
    }),
    300,
  );
});

Deno.test("parseRuleFile() refuses a condition holding an unknown operation, with the path inside it", () => {
  checkProperty(
    fc.property(tree, fc.boolean(), (expr, first) => {
      // The unknown operation sits beside or around a random tree.
      const condition = first ? { and: [{ bteween: [1, 2, 3] }, expr] } : { or: [{ bteween: expr }, true] };
      const text = stringify({ rules: [{ id: "typo", condition, priority: "low" }] });
      const r = parseRuleFile("t.yaml", text);
      assertLocated(r, "t.yaml", text);
      assert.equal(r.rules.length, 0);
      assert.ok(r.problems.length >= 1);
      for (const p of r.problems) assert.match(p.message, /^At "condition\.(and|or)\.0/);
      if (first) assert.match(r.problems[0]!.message, /Unknown JSON-Logic operation "bteween"/);
    }),
  );
});

Deno.test("parseRuleFile() reports an alias to an unknown anchor and an alias bomb as located problems", () => {
  const unknown = parseRuleFile("a.yaml", "rules:\n  - id: x\n    priority: *nope\n");
  assert.equal(unknown.problems.length, 1);
  assert.deepEqual([unknown.problems[0]!.line, unknown.problems[0]!.column], [3, 15]);
  assert.match(unknown.problems[0]!.message, /^Unresolved alias/);
  const levels = ["a: &a [x, x, x, x, x, x, x, x, x, x]"];
  for (let i = 1; i < 8; i++) {
    levels.push(
      `${"abcdefgh"[i]}: &${"abcdefgh"[i]} [${`*${"abcdefgh"[i - 1]}, `.repeat(9)}*${"abcdefgh"[i - 1]}]`,
    );
  }
  const bomb = parseRuleFile("b.yaml", levels.join("\n"));
  assert.equal(bomb.problems.length, 1);
  assert.match(bomb.problems[0]!.message, /alias/i);
});
