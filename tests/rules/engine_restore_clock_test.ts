/**
 * A partition's state restored from the changelog (a restart, a rebalance) and then quiet: its clock
 * must run from the ticks alone, or its silent sensors are never reported and its windows never close.
 */
import assert from "node:assert/strict";
import type { SensorAlert } from "../../src/contract/schemas.ts";
import { emptyOutput, RuleEngine } from "../../src/rules/engine.ts";
import { ev, ruleSet, T0 } from "../helpers/engine.ts";

const at = (a: { timestamp: string }) => (Date.parse(a.timestamp) - T0) / 1000;
const brief = (a: SensorAlert) => `${a.rule_id} ${a.sensor_id} ${a.state}@${at(a)}`;

/** The wall clock of the restoring process: far from the events' times, which must not matter. */
const WALL = Date.UTC(2030, 0, 1);

/** The changelog of an engine that saw `events` (sensor, seconds after T0), each at its own time. */
function changelogAfter(yaml: string, events: [string, number][]) {
  const before = new RuleEngine();
  before.trackChanges();
  before.setRules(ruleSet(yaml));
  const out = emptyOutput();
  for (const [sensor, s] of events) before.onEvent(ev(sensor, 21), T0 + s * 1000, out, T0 + s * 1000);
  return before.takeChanges();
}

function restored(yaml: string, events: [string, number][]): RuleEngine {
  const after = new RuleEngine();
  after.trackChanges();
  after.setRules(ruleSet(yaml));
  after.importState(changelogAfter(yaml, events));
  after.takeChanges();
  return after;
}

Deno.test("RuleEngine.tick() reports the silent sensors of restored state that no event followed, counting from its newest time", () => {
  const yaml = `rules:
  - id: silent
    sensor_type: temperature
    absent_for: 1m
    priority: normal
`;
  const e = restored(yaml, [["a", 0], ["b", 0], ["a", 10], ["b", 10]]);
  const out = emptyOutput();
  e.tick(out, WALL);
  e.tick(out, WALL + 59_000);
  assert.deepEqual(out.alerts.map(brief), [], "quiet for absent_for after the restore");
  e.tick(out, WALL + 61_000);
  assert.deepEqual(out.alerts.map(brief).sort(), ["silent a firing@71", "silent b firing@71"]);
  // The alerts go to the changelog like any other.
  assert.ok(e.takeChanges().some((c) => c.kind === "episode" && c.value !== null));
});

Deno.test("RuleEngine.tick() closes the windows of restored state that no event followed", () => {
  const yaml = `rules:
  - id: avg-1m
    sensor_type: temperature
    window: { type: tumbling, size: 1m }
    threshold: { max: 100 }
    publish: true
    priority: low
`;
  const e = restored(yaml, [["a", 5], ["a", 30]]);
  const out = emptyOutput();
  e.tick(out, WALL);
  assert.equal(out.aggregates.length, 0);
  e.tick(out, WALL + 31_000);
  assert.equal(out.aggregates.length, 1);
});

Deno.test("RuleEngine.tick() leaves an engine with no state and no event still", () => {
  const e = restored(
    `rules:
  - id: silent
    sensor_id: [ghost]
    sensor_type: temperature
    absent_for: 1m
    startup_grace: 0s
    priority: normal
`,
    [],
  );
  const out = emptyOutput();
  e.tick(out, WALL);
  e.tick(out, WALL + 3_600_000);
  assert.deepEqual(out.alerts, []);
});
