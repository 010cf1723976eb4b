/** Window groups: what `group_by` reads from an event, and how a group's alerts are keyed. */
import assert from "node:assert/strict";
import type { SensorEvent } from "../../src/contract/schemas.ts";
import { emptyOutput, RuleEngine } from "../../src/rules/engine.ts";
import { parseRuleFile } from "../../src/rules/load.ts";
import { RuleSet } from "../../src/rules/ruleset.ts";
import { Pipeline } from "../../src/pipeline.ts";
import { createLogger } from "../../src/log.ts";
import { event, MemoryOutput, record } from "../helpers/events.ts";

const T0 = Date.UTC(2026, 10, 25, 12, 0, 0);
let seq = 0;

function ev(sensor_id: string, value: number, extra: Partial<SensorEvent> = {}): SensorEvent {
  return {
    event_id: `g${++seq}`,
    sensor_id,
    sensor_type: "temperature",
    value,
    unit: "°C",
    timestamp: "",
    location: null,
    metadata: {},
    schema_version: 1,
    ...extra,
  };
}

function windowRule(groupBy: string): RuleSet {
  const r = parseRuleFile(
    "t.yaml",
    `rules:
  - id: w
    sensor_type: temperature
    window: { type: tumbling, size: 1m }
    group_by: ${groupBy}
    condition: { ">": [{ var: count }, 1000] }
    publish: true
    priority: low
`,
  );
  assert.deepEqual(r.problems, []);
  return new RuleSet(r.rules);
}

/** Feeds the events at T0 and returns "group:count" of each closed window. */
function groups(groupBy: string, events: SensorEvent[]): string[] {
  const e = new RuleEngine();
  e.setRules(windowRule(groupBy));
  const out = emptyOutput();
  for (const x of events) e.onEvent(x, T0, out);
  e.tick(out, 0, T0 + 3_600_000);
  return out.aggregates.map((a) => `${a.group}:${a.count}`).sort();
}

Deno.test("group_by metadata.fw.version reads the nested field as `var` does", () => {
  const got = groups("metadata.fw.version", [
    ev("a", 1, { metadata: { fw: { version: "1.2" } } }),
    ev("b", 1, { metadata: { fw: { version: "2.0" } } }),
    ev("c", 1, { metadata: { fw: { version: "2.0" } } }),
  ]);
  assert.deepEqual(got, ["1.2:1", "2.0:2"]);
});

Deno.test("an event without the group_by field is left out of the rule's windows", () => {
  const got = groups("metadata.site", [
    ev("a", 1, { metadata: { site: "north" } }),
    ev("b", 1, { metadata: {} }),
    ev("c", 1, { metadata: { site: null } }),
    ev("d", 1, { metadata: { site: "" } }),
  ]);
  assert.deepEqual(got, [":1", "north:1"]);
});

Deno.test('group_by keeps the number 1 and the string "1" apart', () => {
  const got = groups("metadata.fw", [
    ev("a", 1, { metadata: { fw: 1 } }),
    ev("b", 1, { metadata: { fw: "1" } }),
    ev("c", 1, { metadata: { fw: "1" } }),
    ev("d", 1, { metadata: { fw: "=1" } }),
  ]);
  assert.deepEqual(got, ["1:2", '="=1":1', "=1:1"]);
});

Deno.test("group_by a list keeps values that contain the separator apart", () => {
  const got = groups("[location, metadata.room]", [
    ev("a", 1, { location: "a|b", metadata: { room: "c" } }),
    ev("b", 1, { location: "a", metadata: { room: "b|c" } }),
  ]);
  assert.deepEqual(got, ['["a","b|c"]:1', '["a|b","c"]:1']);
});

Deno.test("every notice of a location-grouped window alert goes out under one Kafka key", async () => {
  const r = parseRuleFile(
    "t.yaml",
    `rules:
  - id: hall-hot
    sensor_type: temperature
    window: { type: tumbling, size: 1m }
    group_by: location
    threshold: { max: 30 }
    priority: high
`,
  );
  assert.deepEqual(r.problems, []);
  const ruleSet = new RuleSet(r.rules);
  const output = new MemoryOutput();
  const p = new Pipeline({
    ruleSet: () => ruleSet,
    output,
    topics: { alerts: "alerts", dlq: "dlq" },
    logger: createLogger({ level: "error" }),
    clock: "event",
  });
  const base = Date.UTC(2026, 0, 1);
  const at = (s: number) => new Date(base + s * 1000).toISOString();
  // Window 1 is hot, its newest event from t-1; window 2 cools down, its newest event from t-2.
  const events = [
    event({ sensor_id: "t-2", value: 40, location: "hall", timestamp: at(10) }),
    event({ sensor_id: "t-1", value: 40, location: "hall", timestamp: at(20) }),
    event({ sensor_id: "t-1", value: 20, location: "hall", timestamp: at(70) }),
    event({ sensor_id: "t-2", value: 20, location: "hall", timestamp: at(80) }),
    event({ sensor_id: "t-3", value: 20, location: "porch", timestamp: at(130) }),
  ];
  await p.process(events.map((e, i) => record(e, i)));
  const sent = output.records.filter((x) => x.topic === "alerts");
  assert.deepEqual(sent.map((x) => JSON.parse(x.value!).state), ["firing", "resolved"]);
  assert.deepEqual(sent.map((x) => x.key), ["temperature:hall", "temperature:hall"]);
});
