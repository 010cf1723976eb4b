/** The README's noise control examples load, and flapping and escalation do what the README says. */
import assert from "node:assert/strict";
import { emptyOutput, RuleEngine } from "../../src/rules/engine.ts";
import { parseRuleFile } from "../../src/rules/load.ts";
import { RuleSet } from "../../src/rules/ruleset.ts";
import { ev, T0 } from "../helpers/engine.ts";

const readme = await Deno.readTextFile(new URL("../../README.md", import.meta.url));

function yamlAfter(heading: string): string {
  const from = readme.indexOf(`\n${heading}\n`);
  assert.ok(from >= 0, `no heading "${heading}"`);
  const match = readme.slice(from).match(/```yaml\n([\s\S]*?)```/);
  assert.ok(match, `no yaml block after "${heading}"`);
  return match[1]!;
}

function engineOf(heading: string): RuleEngine {
  const r = parseRuleFile("README.md", yamlAfter(heading));
  assert.deepEqual(r.problems, []);
  const e = new RuleEngine();
  e.setRules(new RuleSet(r.rules, r.inhibitions));
  return e;
}

Deno.test("the README's inhibition and storm guard examples load without problems", () => {
  assert.equal(engineOf("#### Inhibition").ruleSet!.inhibitions.length, 2);
  assert.deepEqual(engineOf("#### Storm guard").ruleSet!.rules[0]!.maxNotifications, {
    count: 20,
    perMs: 60_000,
  });
});

Deno.test("the README's flapping example flaps at the seventh transition within 10 minutes", () => {
  const e = engineOf("#### Flapping");
  const out = emptyOutput();
  for (let i = 0; i < 8; i++) e.onEvent(ev("door-1", i % 2 === 0 ? 35 : 20), T0 + i * 60_000, out);
  assert.deepEqual(out.alerts.map((a) => a.flapping ?? false), [
    false,
    false,
    false,
    false,
    false,
    false,
    true,
  ]);
  assert.match(out.alerts[6]!.message, /^Flapping: 7 changes of state within 10m/);
});

Deno.test("the README's escalation example raises an unacknowledged alert to high at 15m and critical at 1h", () => {
  const e = engineOf("#### Escalation");
  const out = emptyOutput();
  for (let m = 0; m <= 60; m += 5) e.onEvent(ev("fridge-1", -10), T0 + m * 60_000, out);
  assert.deepEqual(out.alerts.map((a) => [a.priority, (Date.parse(a.timestamp) - T0) / 60_000]), [
    ["normal", 0],
    ["high", 15],
    ["critical", 60],
  ]);
});
