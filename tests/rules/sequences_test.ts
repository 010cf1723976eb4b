import assert from "node:assert/strict";
import type { SensorEvent } from "../../src/contract/schemas.ts";
import { emptyOutput, type EngineOutput, type RuleEngine } from "../../src/rules/engine.ts";
import { parseRuleFile } from "../../src/rules/load.ts";
import { engine, ev, T0 } from "../helpers/engine.ts";

const S = 1000;
const M = 60 * S;

const DOOR_THEN_WARM = `
rules:
  - id: door-then-warm
    group_by: location
    sequence:
      first: { sensor_type: motion, condition: { "==": [{ var: value }, 1] } }
      then: { sensor_type: temperature, condition: { ">": [{ var: value }, 25] } }
      within: 5m
      max_open: 3
    priority: high
    message: "{{group}}: {{sensor_id}} at {{value}} after {{first_sensor_id}} at {{first_at}}"
`;

const SETPOINT_NOT_REACHED = `
rules:
  - id: setpoint-not-reached
    group_by: location
    sequence:
      first: { sensor_type: pressure, condition: { ">": [{ var: value }, 0] } }
      not_then: { sensor_type: temperature, condition: { ">=": [{ var: value }, 21] } }
      within: 10m
    priority: normal
`;

function at(id: string, value: number, type: SensorEvent["sensor_type"], location = "Room 1"): SensorEvent {
  return { ...ev(id, value, type), location };
}

function run(e: RuleEngine, steps: [number, SensorEvent | "tick"][]): EngineOutput {
  const out = emptyOutput();
  for (const [t, x] of steps) {
    if (x === "tick") e.tick(out, 0, T0 + t);
    else e.onEvent(x, T0 + t, out);
  }
  assert.deepEqual(out.errors, []);
  return out;
}

Deno.test("sequence A then B within T fires on B, in A's group, and resolves T after the match", () => {
  const e = engine(DOOR_THEN_WARM);
  const out = run(e, [
    [0, at("door-1", 1, "motion")],
    [1 * M, at("temp-9", 26, "temperature", "Room 2")], // another group
    [2 * M, at("temp-1", 24, "temperature")], // not B
    [3 * M, at("temp-1", 26, "temperature")], // B within 5m of A
    [9 * M, "tick"],
  ]);
  assert.deepEqual(
    out.alerts.map((a) => [a.state, a.group, a.sensor_id, a.timestamp]),
    [
      ["firing", "Room 1", "temp-1", new Date(T0 + 3 * M).toISOString()],
      ["resolved", "Room 1", "temp-1", new Date(T0 + 8 * M).toISOString()],
    ],
  );
  assert.equal(out.alerts[0]!.kind, "sequence");
  assert.equal(
    out.alerts[0]!.message,
    `Room 1: temp-1 at 26 after door-1 at ${new Date(T0).toISOString()}`,
  );
});

Deno.test("sequence A then B: a B after T, or before any A, does not fire; the expired A is counted", () => {
  const e = engine(DOOR_THEN_WARM);
  const out = run(e, [
    [0, at("temp-1", 26, "temperature")],
    [1 * M, at("door-1", 1, "motion")],
    [7 * M, at("temp-1", 27, "temperature")],
  ]);
  assert.deepEqual(out.alerts, []);
  assert.equal(e.sequenceExpired, 1);
});

Deno.test("sequence matching state is capped per group: the oldest partial match goes and is counted", () => {
  const e = engine(DOOR_THEN_WARM);
  run(e, [0, 1, 2, 3, 4].map((i) => [i * S, at("door-1", 1, "motion")]));
  assert.equal(e.sequenceDropped, 2);
  assert.equal(e.sequenceOpen, 3);
});

Deno.test("sequence A not followed by B within T fires when T passes on the partition's clock", () => {
  const e = engine(SETPOINT_NOT_REACHED);
  const out = run(e, [
    [0, at("valve-1", 1, "pressure")],
    [5 * M, at("temp-1", 19, "temperature")], // not B
    [9 * M, "tick"],
    [10 * M, "tick"],
    [11 * M, at("temp-1", 21.5, "temperature")], // B, late: resolves
  ]);
  assert.deepEqual(
    out.alerts.map((a) => [a.state, a.group, a.sensor_id, a.timestamp]),
    [
      ["firing", "Room 1", "valve-1", new Date(T0 + 10 * M).toISOString()],
      // Every notice of a sequence episode keeps the sensor it fired with (one key, one partition).
      ["resolved", "Room 1", "valve-1", new Date(T0 + 11 * M).toISOString()],
    ],
  );
});

Deno.test("sequence A not followed by B: a B stamped after the deadline first fires, then resolves", () => {
  // A replay has no ticks between the two events: the deadline passed in event time all the same.
  const e = engine(SETPOINT_NOT_REACHED);
  const out = run(e, [[0, at("valve-1", 1, "pressure")], [12 * M, at("temp-1", 22, "temperature")]]);
  assert.deepEqual(out.alerts.map((a) => [a.state, a.timestamp]), [
    ["firing", new Date(T0 + 10 * M).toISOString()],
    ["resolved", new Date(T0 + 12 * M).toISOString()],
  ]);
});

Deno.test("sequence A not followed by B: a B within T cancels it", () => {
  const e = engine(SETPOINT_NOT_REACHED);
  const out = run(e, [
    [0, at("valve-1", 1, "pressure")],
    [4 * M, at("temp-1", 21, "temperature")],
    [30 * M, "tick"],
  ]);
  assert.deepEqual(out.alerts, []);
});

Deno.test("sequence state survives a checkpoint: the restored engine fires the pending deadline", () => {
  const before = engine(SETPOINT_NOT_REACHED);
  before.trackChanges();
  run(before, [[0, at("valve-1", 1, "pressure")], [1 * M, at("temp-1", 19, "temperature")]]);
  const changelog = before.takeChanges();
  assert.ok(changelog.some((c) => c.kind === "sequence" && c.group === "Room 1"));
  const after = engine(SETPOINT_NOT_REACHED);
  after.importState(JSON.parse(JSON.stringify(changelog)));
  const out = run(after, [[2 * M, at("temp-1", 19, "temperature")], [11 * M, "tick"]]);
  assert.deepEqual(out.alerts.map((a) => [a.state, a.sensor_id]), [["firing", "valve-1"]]);
});

Deno.test("parseRuleFile() checks a sequence: one of then and not_then, and its steps' conditions", () => {
  const problems = (sequence: string) =>
    parseRuleFile("t.yaml", `rules:\n  - id: s\n    priority: low\n    sequence: ${sequence}\n`).problems.map(
      (
        p,
      ) => `${p.line} ${p.message}`,
    );
  assert.deepEqual(problems(`{ first: { condition: true }, within: 5m }`), [
    '4 Field "sequence": needs exactly one of "then" or "not_then"',
  ]);
  assert.deepEqual(
    problems(`{ first: { condition: { ">": [{ var: valeu }, 1] } }, then: { condition: true }, within: 5m }`),
    [
      '4 At "sequence.first.condition.>.0.var": Unknown field "valeu" in "var" (known: event_id, sensor_id, sensor_type, value, unit, timestamp, location, metadata, schema_version)',
    ],
  );
});
