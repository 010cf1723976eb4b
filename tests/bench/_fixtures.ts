/** Shared inputs of the micro benchmarks: a fleet's events and generated rule sets. */
import type { SensorEvent } from "../../src/contract/schemas.ts";
import { decodeEvent } from "../../src/decode/decode.ts";
import { parseRuleFile } from "../../src/rules/load.ts";
import { RuleSet } from "../../src/rules/ruleset.ts";
import { EventGenerator, sensorFleet } from "../../src/simulator/sensors.ts";
import { generateRules, rulesFile, type RuleShape } from "../../scripts/bench/rules.ts";

export const T0 = Date.UTC(2026, 0, 1);

/** Encoded events of a 10,000-sensor fleet, one per sensor, without anomalies (they match few rules). */
export function encodedEvents(n = 10_000): string[] {
  const gen = new EventGenerator({ seed: 7, anomalyProbability: 0, sensors: sensorFleet(n - 6) });
  return Array.from({ length: n }, (_, i) => JSON.stringify(gen.next(T0 + i)));
}

export function decodedEvents(n = 10_000): SensorEvent[] {
  return encodedEvents(n).map((text) => {
    const r = decodeEvent(text, null);
    if (!r.ok) throw new Error(r.error);
    return r.value.event;
  });
}

export function ruleSetOf(yaml: string, file = "bench.yaml"): RuleSet {
  const r = parseRuleFile(file, yaml);
  if (r.problems.length > 0) throw new Error(r.problems.map((p) => p.message).join("; "));
  return new RuleSet(r.rules);
}

export function generatedRuleSet(n: number, only?: RuleShape): RuleSet {
  return ruleSetOf(rulesFile(generateRules(n, only === undefined ? {} : { only })));
}

/** Like `generatedRuleSet`, with every threshold written as the equivalent JSON-Logic condition. */
export function generatedLogicRuleSet(n: number, only?: RuleShape): RuleSet {
  const rules = generateRules(n, only === undefined ? {} : { only }).map(({ threshold, ...r }) => {
    if (threshold === undefined) return r;
    const { min, max } = threshold as { min: number; max: number };
    return {
      ...r,
      condition: { "or": [{ "<": [{ "var": "value" }, min] }, { ">": [{ "var": "value" }, max] }] },
    };
  });
  return ruleSetOf(rulesFile(rules));
}
