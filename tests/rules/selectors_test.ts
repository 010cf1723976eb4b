/**
 * The `sensor_id` and `location` globs of rules, sequence steps and inhibit rules run against strings a
 * producer chooses. They must decide in one pass whatever the id: a backtracking regex from
 * `*-*-*-*-*-x` took 57 s on a 256-character location (O(n⁵)); the strings below are 20,000 characters,
 * as a rule test or a backtest may hold.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { globMatcher } from "../../src/contract/matcher.ts";
import type { SensorEvent } from "../../src/contract/schemas.ts";
import { parseRuleFile } from "../../src/rules/load.ts";
import { ev, ruleSet, T0 } from "../helpers/engine.ts";
import { emptyOutput, RuleEngine } from "../../src/rules/engine.ts";
import { alert } from "../helpers/notifiers.ts";

const LONG = "-".repeat(20_000);

const RULES = `
rules:
  - id: dashes
    sensor_type: temperature
    sensor_id: "*-*-*-*-x"
    location: ["*-*-*-*-x", "Hall ?"]
    threshold: { max: 30 }
    priority: high
  - id: door-then-dashes
    group_by: location
    sequence:
      first: { sensor_type: motion, sensor_id: "*-*-*-*-x", condition: { "==": [{ var: value }, 1] } }
      then: { sensor_type: temperature, location: "*-*-*-*-x", condition: { ">": [{ var: value }, 25] } }
      within: 5m
    priority: high
inhibit:
  - source: { sensor_id: "*-*-*-*-x" }
    target: { location: "*-*-*-*-x" }
`;

function at(id: string, value: number, type: SensorEvent["sensor_type"], location: string): SensorEvent {
  return { ...ev(id, value, type), location };
}

Deno.test("a rule's sensor_id and location globs decide on a 20,000-character id in one pass", () => {
  const rules = ruleSet(RULES);
  const dashes = rules.byId.get("dashes")!;
  const hit = at(`${LONG}x`, 40, "temperature", `${LONG}x`);
  const miss = at(LONG, 40, "temperature", LONG);
  const ids = (e: SensorEvent) => rules.candidates(e).map((r) => r.rule.id);
  assert.deepEqual(ids(hit), ["dashes", "door-then-dashes"]);
  assert.equal(dashes.selects(hit), true);
  assert.deepEqual(ids(miss), ["door-then-dashes"]);
  assert.equal(dashes.selects({ ...hit, location: LONG }), false);

  const engine = new RuleEngine();
  engine.setRules(rules);
  const out = emptyOutput();
  engine.onEvent(at("a-b-c-d-x", 1, "motion", `${LONG}x`), T0, out);
  engine.onEvent(at(LONG, 1, "motion", LONG), T0 + 1, out);
  engine.onEvent(at("t-2", 30, "temperature", LONG), T0 + 2, out);
  engine.onEvent(at("t-1", 30, "temperature", `${LONG}x`), T0 + 3, out);
  assert.deepEqual(out.errors, []);
  assert.deepEqual(out.alerts.map((a) => [a.rule_id, a.sensor_id]), [["door-then-dashes", "t-1"]]);
});

Deno.test("an inhibit rule's globs decide on a 20,000-character id in one pass", () => {
  const r = parseRuleFile("rules/noise.yaml", RULES);
  assert.deepEqual(r.problems, []);
  const [inhibition] = r.inhibitions;
  assert.equal(inhibition!.source(alert({ sensor_id: `${LONG}x` })), true);
  assert.equal(inhibition!.source(alert({ sensor_id: LONG })), false);
  assert.equal(inhibition!.target(alert({ location: `${LONG}x` })), true);
  assert.equal(inhibition!.target(alert({ location: LONG })), false);
});

Deno.test("in a rule's glob only `*` is special: `?`, `.`, `[` and `\\` are themselves", () => {
  const rules = ruleSet(RULES);
  const dashes = rules.byId.get("dashes")!;
  assert.equal(dashes.selects(at("a-b-c-d-x", 40, "temperature", "Hall ?")), true);
  assert.equal(dashes.selects(at("a-b-c-d-x", 40, "temperature", "Hall 7")), false);
  for (
    const [glob, text, expected] of [
      ["a.c", "abc", false],
      ["a.c", "a.c", true],
      ["[ab]*", "a", false],
      ["[ab]*", "[ab]x", true],
      ["a\\*", "a\\zz", true],
      ["", "", true],
      ["", "a", false],
      ["**", "", true],
      ["*x*", "x", true],
    ] as const
  ) {
    assert.equal(globMatcher(glob)(text), expected, `${glob} against "${text}"`);
  }
});

Deno.test("globMatcher() agrees with the anchored regex its glob stands for", () => {
  // A small alphabet makes the shapes that matter (runs, repeats, stars side by side) common.
  const glob = fc.stringMatching(/^[ab*-]{0,8}$/);
  const text = fc.stringMatching(/^[ab-]{0,12}$/);
  fc.assert(
    fc.property(glob, text, (g, t) => {
      const re = new RegExp(`^${g.split("*").map((s) => s.replace(/[-]/g, "\\-")).join(".*")}$`);
      assert.equal(globMatcher(g)(t), re.test(t), `${g} against "${t}"`);
    }),
    { numRuns: 5_000 },
  );
});
