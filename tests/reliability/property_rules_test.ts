/**
 * parseRuleFile() is the boundary between a rule file someone is typing and the engine: whatever the
 * text, it returns rules or located problems, and never throws (hot reload must survive a half-saved file).
 * And the engine over generated streams: episodes keep their times in order and their key, and one
 * sensor stamped ahead cannot change the others' alerts.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { stringify } from "yaml";
import { alertKey, type SensorAlert } from "../../src/contract/schemas.ts";
import { emptyOutput, RuleEngine } from "../../src/rules/engine.ts";
import { parseRuleFile, type RuleFileResult } from "../../src/rules/load.ts";
import { RuleSet } from "../../src/rules/ruleset.ts";
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
      // Every problem is reported, the tree's own ones too; the typo is the first of them.
      for (const p of r.problems) assert.match(p.message, /^At "condition\.(and|or)\./);
      assert.match(r.problems[0]!.message, /^At "condition\.(and|or)\.0/);
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

/*
 * The engine over generated live streams: sensors s0..s2 reporting at random gaps, each event stamped
 * up to 3 s before it arrives (so some arrive out of order), the service's 1 s ticks in between.
 */
const STREAM_RULES = new RuleSet(
  parseRuleFile(
    "stream.yaml",
    `rules:
  - id: hot
    sensor_type: temperature
    threshold: { max: 30 }
    for: 10s
    clear_for: 5s
    repeat_interval: 30s
    priority: high
  - id: warm-window
    sensor_type: temperature
    window: { type: tumbling, size: 30s }
    allowed_lateness: 2s
    threshold: { max: 25 }
    priority: normal
  - id: silent
    absent_for: 40s
    startup_grace: 0s
    priority: low
`,
  ).rules,
);

interface Arrival {
  sensor: string;
  value: number;
  /** Wall time of arrival, ms after T. */
  arrival: number;
  /** Event time, ms after T. */
  stamp: number;
  id: string;
}

const T = Date.UTC(2026, 10, 25, 12, 0, 0);

const stream = fc.array(
  fc.record({
    sensor: fc.constantFrom("s0", "s1", "s2"),
    value: fc.integer({ min: 0, max: 50 }),
    gap: fc.integer({ min: 0, max: 25_000 }),
    delay: fc.integer({ min: 0, max: 3000 }),
  }),
  { minLength: 2, maxLength: 60 },
).map((items) => {
  let arrival = 0;
  return items.map((x, i): Arrival => {
    arrival += x.gap;
    return { sensor: x.sensor, value: x.value, arrival, stamp: arrival - x.delay, id: `e${i}` };
  });
});

/** Runs arrivals through a fresh engine as the live service would; returns every alert in order. */
function runLive(arrivals: Arrival[]): SensorAlert[] {
  const engine = new RuleEngine();
  engine.setRules(STREAM_RULES);
  const out = emptyOutput();
  let nextTick = 1000;
  for (const a of arrivals) {
    for (; nextTick <= a.arrival; nextTick += 1000) engine.tick(out, T + nextTick);
    engine.onEvent(
      {
        event_id: a.id,
        sensor_id: a.sensor,
        sensor_type: "temperature",
        value: a.value,
        unit: "°C",
        timestamp: new Date(T + a.stamp).toISOString(),
        location: null,
        metadata: {},
        schema_version: 1,
      },
      T + a.stamp,
      out,
      T + a.arrival,
    );
  }
  const end = (arrivals.at(-1)?.arrival ?? 0) + 120_000;
  for (; nextTick <= end; nextTick += 1000) engine.tick(out, T + nextTick);
  assert.deepEqual(out.errors, []);
  return out.alerts;
}

Deno.test("within an episode no notice is stamped before it fired, times never go back, and one alert_id keeps one key", () => {
  checkProperty(
    fc.property(stream, (arrivals) => {
      const byId = new Map<string, SensorAlert[]>();
      for (const a of runLive(arrivals)) {
        const list = byId.get(a.alert_id) ?? [];
        list.push(a);
        byId.set(a.alert_id, list);
      }
      for (const [id, notices] of byId) {
        const firedAt = Date.parse(String(notices[0]!.fired_at));
        let previous = -Infinity;
        for (const n of notices) {
          const at = Date.parse(n.timestamp);
          assert.ok(at >= firedAt, `${id}: ${n.state} at ${n.timestamp} before fired_at ${n.fired_at}`);
          assert.ok(at >= previous, `${id}: ${n.state} at ${n.timestamp} goes back in time`);
          previous = at;
          assert.equal(String(n.fired_at), String(notices[0]!.fired_at));
        }
        assert.equal(new Set(notices.map(alertKey)).size, 1, `${id} changed key`);
        assert.ok(notices.filter((n) => n.state === "resolved").length <= 1);
      }
    }),
    150,
  );
});

Deno.test("one event stamped up to 5 minutes ahead cannot change another sensor's alerts", () => {
  checkProperty(
    fc.property(
      stream,
      fc.nat(),
      fc.integer({ min: 1000, max: 300_000 }),
      fc.integer({ min: 0, max: 50 }),
      (arrivals, where, lead, value) => {
        // Not the very first event: the stream's start is its first event's time.
        const i = 1 + (where % arrivals.length);
        const at = arrivals[i - 1]!.arrival;
        const odd: Arrival = { sensor: "odd", value, arrival: at, stamp: at + lead, id: "odd-1" };
        const others = (alerts: SensorAlert[]) =>
          alerts.filter((a) => a.sensor_id !== "odd").map((a) =>
            `${a.rule_id} ${a.sensor_id} ${a.alert_id} ${a.state} ${a.timestamp} ${a.value} ${a.repeat}`
          );
        const without = others(runLive(arrivals));
        const withOdd = others(runLive([...arrivals.slice(0, i), odd, ...arrivals.slice(i)]));
        assert.deepEqual(withOdd, without);
      },
    ),
    150,
  );
});
