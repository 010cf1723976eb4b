import assert from "node:assert/strict";
import type { SensorEvent } from "../../src/contract/schemas.ts";
import type { CompiledRule } from "../../src/rules/compile.ts";
import { decodedEvents, generatedRuleSet } from "../bench/_fixtures.ts";

Deno.test("RuleSet.candidates() gives every rule whose selectors match the sensor, in file order", () => {
  const ruleSet = generatedRuleSet(300);
  // Without the index: a rule matches when the sensor is one of its ids and types and it selects the event.
  const matches = (r: CompiledRule, event: SensorEvent) =>
    (r.sensorIds === null || r.sensorIds.has(event.sensor_id)) &&
    (r.sensorTypes === null || r.sensorTypes.has(event.sensor_type)) && r.selects(event);
  for (const event of decodedEvents(2000)) {
    const expected = ruleSet.rules.filter((r) => matches(r, event));
    const got = ruleSet.candidates(event).filter((r) => matches(r, event));
    assert.deepEqual(got.map((r) => r.rule.id), expected.map((r) => r.rule.id), event.sensor_id);
  }
});
