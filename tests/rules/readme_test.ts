/** The README's rule examples do what the README says they do. */
import assert from "node:assert/strict";
import type { SensorEvent } from "../../src/contract/schemas.ts";
import { emptyOutput, RuleEngine } from "../../src/rules/engine.ts";
import { parseRuleFile } from "../../src/rules/load.ts";
import { RuleSet } from "../../src/rules/ruleset.ts";

const readme = await Deno.readTextFile(new URL("../../README.md", import.meta.url));

/** The first ```yaml block after a heading. */
function yamlAfter(heading: string): string {
  const from = readme.indexOf(`\n${heading}\n`);
  assert.ok(from >= 0, `no heading "${heading}"`);
  const match = readme.slice(from).match(/```yaml\n([\s\S]*?)```/);
  assert.ok(match, `no yaml block after "${heading}"`);
  return match[1]!;
}

Deno.test("the README's battery-low example fires only for a battery_level that is present and below 15", () => {
  const r = parseRuleFile("README.md", yamlAfter("### Event rules"));
  assert.deepEqual(r.problems, []);
  const rule = r.rules.find((x) => x.rule.id === "battery-low");
  assert.ok(rule, "the example has a battery-low rule");
  const e = new RuleEngine();
  e.setRules(new RuleSet([rule]));
  const out = emptyOutput();
  const fired: string[] = [];
  const cases: [string, Record<string, unknown>][] = [
    ["none", {}],
    ["null", { battery_level: null }],
    ["fifty", { battery_level: 50 }],
    ["ten", { battery_level: 10 }],
    ["zero", { battery_level: 0 }],
  ];
  cases.forEach(([sensor_id, metadata], i) => {
    const event: SensorEvent = {
      event_id: `b${i}`,
      sensor_id,
      sensor_type: "motion",
      value: 1,
      unit: "",
      timestamp: "",
      location: null,
      metadata,
      schema_version: 1,
    };
    e.onEvent(event, Date.UTC(2026, 0, 1) + i * 1000, out);
    for (const a of out.alerts.splice(0)) fired.push(a.sensor_id);
  });
  assert.deepEqual(fired, ["ten", "zero"]);
});

Deno.test("the README's examples of per-sensor limits, anomaly operations and sequences load without problems", () => {
  for (const heading of ["### Per-sensor limits", "### Anomaly operations", "### Sequence rules"]) {
    const yaml = yamlAfter(heading);
    const file = yaml.startsWith("rules:") ? yaml : `rules:\n${yaml.replace(/^/gm, "  ")}`;
    const r = parseRuleFile("README.md", file);
    assert.deepEqual(r.problems, [], heading);
    assert.equal(r.rules.length, 1, heading);
  }
});
