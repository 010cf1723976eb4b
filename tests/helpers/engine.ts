/** Events and rule sets for tests that drive a RuleEngine directly, in virtual time from `T0`. */
import assert from "node:assert/strict";
import type { SensorEvent } from "../../src/contract/schemas.ts";
import { RuleEngine } from "../../src/rules/engine.ts";
import { parseRuleFile } from "../../src/rules/load.ts";
import { RuleSet } from "../../src/rules/ruleset.ts";

export const T0 = Date.UTC(2026, 10, 25, 12, 0, 0);
let seq = 0;

/** An event with a fresh id; its time is given to the engine beside it. */
export function ev(
  sensor_id: string,
  value: number,
  sensor_type: SensorEvent["sensor_type"] = "temperature",
): SensorEvent {
  return {
    event_id: `e${++seq}`,
    sensor_id,
    sensor_type,
    value,
    unit: "°C",
    timestamp: "",
    location: "Building A",
    metadata: {},
    schema_version: 1,
  };
}

/** The rules of one YAML file, which must have no problems. */
export function ruleSet(yaml: string): RuleSet {
  const r = parseRuleFile("t.yaml", yaml);
  assert.deepEqual(r.problems, []);
  return new RuleSet(r.rules);
}

/** An engine running the rules of one YAML file. */
export function engine(yaml: string): RuleEngine {
  const e = new RuleEngine();
  e.setRules(ruleSet(yaml));
  return e;
}
