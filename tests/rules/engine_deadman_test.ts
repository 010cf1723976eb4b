/** What a deadman alert says: the silent sensor's type and key, how long it was silent, when last seen. */
import assert from "node:assert/strict";
import { sensorKey } from "../../src/contract/schemas.ts";
import { emptyOutput, RuleEngine } from "../../src/rules/engine.ts";
import { parseRuleFile } from "../../src/rules/load.ts";
import { RuleSet } from "../../src/rules/ruleset.ts";

const T0 = Date.UTC(2026, 10, 25, 12, 0, 0);

const GHOST = `rules:
  - id: ghost
    sensor_id: [co2-ghost]
    sensor_type: co2
    absent_for: 1m
    startup_grace: 0s
    priority: high
    message: "{{sensor_type}} {{sensor_id}} silent {{absent_for}}, last seen {{last_seen}}"
`;

Deno.test("a listed sensor that never sent anything is alerted on with its rule's sensor type, last seen never", () => {
  const r = parseRuleFile("t.yaml", GHOST);
  assert.deepEqual(r.problems, []);
  const e = new RuleEngine();
  e.setRules(new RuleSet(r.rules));
  const out = emptyOutput();
  for (let s = 0; s <= 90; s += 30) {
    e.onEvent(
      {
        event_id: `c${s}`,
        sensor_id: "co2-001",
        sensor_type: "co2",
        value: 400,
        unit: "ppm",
        timestamp: "",
        location: null,
        metadata: {},
        schema_version: 1,
      },
      T0 + s * 1000,
      out,
    );
  }
  assert.equal(out.alerts.length, 1);
  const a = out.alerts[0]!;
  assert.equal(sensorKey(a), "co2:co2-ghost");
  assert.equal(a.value, 60);
  assert.equal(a.message, "co2 co2-ghost silent 60s, last seen never");
});

Deno.test("a deadman rule that lists sensor ids without one sensor_type is refused when it loads", () => {
  const r = parseRuleFile("t.yaml", GHOST.replace("    sensor_type: co2\n", ""));
  assert.equal(r.rules.length, 0);
  assert.match(r.problems[0]!.message, /must name one "sensor_type"/);
});
