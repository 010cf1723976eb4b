/**
 * One engine keeps state for at most `maxSensors` sensors: a producer inventing sensor ids (or a counter
 * in an id) grew its heap by ~550 bytes per id for ever before. At the limit, sensors that hold nothing
 * but their newest time are forgotten; while the others hold state, events of new sensors are refused.
 */
import assert from "node:assert/strict";
import { emptyOutput, RuleEngine, SensorLimitError } from "../../src/rules/engine.ts";
import { ev, ruleSet, T0 } from "../helpers/engine.ts";

const HOT = `
rules:
  - id: hot
    sensor_type: temperature
    threshold: { max: 30 }
    priority: high
`;

const SILENT = `
rules:
  - id: silent
    absent_for: 5m
    priority: normal
`;

function limited(yaml: string, maxSensors: number): RuleEngine {
  const e = new RuleEngine({ maxSensors });
  e.setRules(ruleSet(yaml));
  return e;
}

Deno.test("at its limit the engine forgets sensors that hold only their newest time, and keeps firing ones", () => {
  const e = limited(HOT, 100);
  const out = emptyOutput();
  e.onEvent(ev("kept", 40), T0, out);
  for (let i = 0; i < 1_000; i++) e.onEvent(ev(`passing-${i}`, 20), T0 + 1 + i, out);
  assert.ok(e.sensorCount <= 100, `${e.sensorCount} sensors kept`);
  assert.ok(e.sensorsForgotten >= 900, `${e.sensorsForgotten} forgotten`);
  assert.equal(e.sensorsRefused, 0);
  // The firing sensor's episode is still there: its next normal value resolves the alert it raised.
  e.onEvent(ev("kept", 20), T0 + 2_000, out);
  assert.deepEqual(out.errors, []);
  assert.deepEqual(out.alerts.map((a) => [a.sensor_id, a.state]), [["kept", "firing"], ["kept", "resolved"]]);
  // A forgotten sensor that comes back is judged as after a restart: its event raises an alert.
  e.onEvent(ev("passing-0", 35), T0 + 2_001, out);
  assert.deepEqual(out.alerts.slice(2).map((a) => [a.sensor_id, a.state]), [["passing-0", "firing"]]);
});

Deno.test("while every kept sensor holds a deadman timer, events of new sensors are refused, old ones go on", () => {
  const e = limited(SILENT, 100);
  const out = emptyOutput();
  for (let i = 0; i < 100; i++) e.onEvent(ev(`s-${i}`, 20), T0 + i, out);
  const refused: string[] = [];
  for (let i = 100; i < 1_100; i++) {
    try {
      e.onEvent(ev(`s-${i}`, 20), T0 + i, out);
    } catch (err) {
      assert.ok(err instanceof SensorLimitError);
      refused.push(err.message);
    }
  }
  assert.equal(refused.length, 1_000);
  assert.equal(e.sensorsRefused, 1_000);
  assert.match(refused[0]!, /100 sensors, its limit \(MAX_SENSORS_PER_PARTITION=100\)/);
  assert.equal(e.sensorCount, 100);
  // Known sensors are still judged: s-0 talks on, the others fall silent and fire; no refused one does.
  e.onEvent(ev("s-0", 20), T0 + 6 * 60_000, out);
  e.tick(out, 0, T0 + 6 * 60_000);
  assert.deepEqual(out.errors, []);
  const silent = new Set(out.alerts.filter((a) => a.state === "firing").map((a) => a.sensor_id));
  assert.equal(silent.size, 99);
  assert.equal(silent.has("s-0"), false);
  assert.equal([...silent].some((id) => Number(id.slice(2)) >= 100), false);
});

Deno.test("after a look that found too little to forget, the engine refuses a tenth of its limit before looking again", () => {
  const e = limited(SILENT, 100);
  const out = emptyOutput();
  for (let i = 0; i < 100; i++) e.onEvent(ev(`s-${i}`, 20), T0 + i, out);
  const refuse = (id: string) => assert.throws(() => e.onEvent(ev(id, 20), T0 + 200, out), SensorLimitError);
  refuse("new-0");
  // The deadman rule goes: the kept sensors hold only their newest time now, but a look walks every
  // sensor, so the next nine new ones (a tenth of the limit with the first) are refused without one.
  e.setRules(ruleSet(HOT));
  for (let i = 1; i < 10; i++) refuse(`new-${i}`);
  assert.equal(e.sensorCount, 100);
  e.onEvent(ev("new-10", 20), T0 + 201, out);
  assert.equal(e.sensorCount, 91, "forgotten down to nine tenths of the limit, then new-10 kept");
  assert.equal(e.sensorsRefused, 10);
  assert.deepEqual(out.errors, []);
});
