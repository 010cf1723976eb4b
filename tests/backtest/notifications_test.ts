/** noiseOutcome(): the notifier stage's storm guard and inhibit rules over a backtest's alerts, in event time. */
import assert from "node:assert/strict";
import { noiseOutcome } from "../../src/backtest/notifications.ts";
import type { SensorAlert } from "../../src/contract/schemas.ts";
import { parseRuleFile } from "../../src/rules/load.ts";
import { RuleSet } from "../../src/rules/ruleset.ts";
import { alert } from "../helpers/notifiers.ts";

function ruleSet(text: string): RuleSet {
  const f = parseRuleFile("rules.yaml", text);
  assert.deepEqual(f.problems, []);
  return new RuleSet(f.rules, f.inhibitions);
}

const T0 = Date.parse("2026-01-01T00:00:00Z");
const at = (s: number, over: Partial<SensorAlert>): SensorAlert =>
  alert({ timestamp: new Date(T0 + s * 1000).toISOString(), state: "firing", ...over });

Deno.test("noiseOutcome() ends a storm guard's interval when the alerts' event time passes it, not the wall clock", () => {
  const rules = ruleSet(`rules:
  - id: storm
    sensor_type: co2
    threshold: { max: 1000 }
    priority: low
    max_notifications: { count: 2, per: 1m }
`);
  const alerts = [
    ...[0, 1, 2, 3, 4].map((i) => at(i, { alert_id: `a${i}`, rule_id: "storm", sensor_id: `s${i}` })),
    // 70 s later in event time: a new interval, two sent again, the third held.
    ...[5, 6, 7].map((i) => at(70 + i, { alert_id: `a${i}`, rule_id: "storm", sensor_id: `s${i}` })),
  ];
  const out = noiseOutcome(alerts, rules);
  assert.deepEqual(out.notifications.get("storm"), { sent: 4, inhibited: 0, held: 4, summaries: 2 });
});

Deno.test("noiseOutcome() inhibits a target while its source fires, and not after the source resolved", () => {
  const rules = ruleSet(`rules:
  - id: gateway-down
    sensor_type: co2
    threshold: { max: 1000 }
    priority: critical
  - id: sensor-high
    sensor_type: co2
    threshold: { max: 900 }
    priority: high
inhibit:
  - source: { rule_id: gateway-down }
    target: { rule_id: sensor-high }
    equal: [location]
`);
  const where = { location: "hall" };
  const out = noiseOutcome([
    at(0, { alert_id: "g", rule_id: "gateway-down", ...where }),
    at(1, { alert_id: "t1", rule_id: "sensor-high", ...where }),
    at(2, { alert_id: "t2", rule_id: "sensor-high", location: "yard" }),
    at(3, { alert_id: "g", rule_id: "gateway-down", state: "resolved", ...where }),
    at(4, { alert_id: "t1", rule_id: "sensor-high", repeat: 1, ...where }),
  ], rules);
  assert.deepEqual(out.notifications.get("sensor-high"), { sent: 2, inhibited: 1, held: 0, summaries: 0 });
  assert.deepEqual(out.notifications.get("gateway-down"), { sent: 2, inhibited: 0, held: 0, summaries: 0 });
});

Deno.test("noiseOutcome() counts flapping notices and each escalation step once", () => {
  const rules = ruleSet(`rules:
  - id: r
    sensor_type: co2
    threshold: { max: 1000 }
    priority: normal
`);
  const out = noiseOutcome([
    at(0, { alert_id: "x", rule_id: "r" }),
    at(1, { alert_id: "x", rule_id: "r", escalation: 1, priority: "high" }),
    at(2, { alert_id: "x", rule_id: "r", escalation: 1, priority: "high", repeat: 1 }),
    at(3, { alert_id: "x", rule_id: "r", escalation: 2, priority: "critical" }),
    at(4, { alert_id: "y", rule_id: "r", flapping: true }),
    at(5, { alert_id: "y", rule_id: "r", flapping: false }),
  ], rules);
  assert.deepEqual(out.noise.get("r"), { flapping: 1, escalations: 2 });
});
