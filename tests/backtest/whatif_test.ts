import assert from "node:assert/strict";
import { EventHistory, parseOneRule, WhatIfRuleError } from "../../src/backtest/whatif.ts";
import type { SensorEvent } from "../../src/contract/schemas.ts";

const T0 = Date.UTC(2026, 0, 1);

function feed(h: EventHistory, sensor: string, s: number, value: number, partition: number | null = 0): void {
  const event = {
    event_id: `${sensor}-${s}`,
    sensor_id: sensor,
    sensor_type: "temperature",
    value,
    unit: "°C",
    timestamp: new Date(T0 + s * 1000).toISOString(),
    location: "hall",
    metadata: {},
    schema_version: 1,
  } satisfies SensorEvent;
  h.onEvent({ event, time: T0 + s * 1000, key: "" }, {
    topic: "t",
    partition,
    offset: null,
    key: null,
    value: null,
  });
}

Deno.test("EventHistory keeps the newest events up to its count, oldest dropped first, in arrival order", () => {
  const h = new EventHistory({ maxEvents: 3 });
  for (let s = 0; s < 5; s++) feed(h, `s-${s}`, s, s * 10, s % 2 === 0 ? null : 1);
  assert.equal(h.full, true);
  assert.deepEqual(
    h.events().map((k) => [k.event.sensor_id, k.event.value, k.event.timestamp, k.partition]),
    [
      ["s-2", 20, new Date(T0 + 2000).toISOString(), null],
      ["s-3", 30, new Date(T0 + 3000).toISOString(), 1],
      ["s-4", 40, new Date(T0 + 4000).toISOString(), null],
    ],
  );
  assert.equal(h.events()[0]!.event.location, "hall");
});

Deno.test("EventHistory gives back only the last maxAgeMs of event time before its newest event", () => {
  const h = new EventHistory({ maxAgeMs: 60_000, maxEvents: 100 });
  for (const s of [0, 30, 59, 60, 61, 120]) feed(h, "a", s, s);
  assert.equal(h.full, false);
  assert.deepEqual(h.events().map((k) => k.event.value), [60, 61, 120]);
});

Deno.test("EventHistory skips the events of sensors beyond its table, counting them", () => {
  const h = new EventHistory({ maxSensors: 2 });
  feed(h, "a", 0, 1);
  feed(h, "b", 1, 2);
  feed(h, "c", 2, 3);
  feed(h, "a", 3, 4);
  assert.equal(h.skipped, 1);
  assert.deepEqual(h.events().map((k) => k.event.sensor_id), ["a", "b", "a"]);
});

Deno.test("parseOneRule() takes a rule's mapping or a file of one rule, and locates problems in the text given", () => {
  const rule = "id: hot\nsensor_type: temperature\nthreshold: { max: 30 }\npriority: high\n";
  assert.deepEqual([...parseOneRule(rule).byId.keys()], ["hot"]);
  assert.deepEqual([
    ...parseOneRule(`rules:\n  - ${rule.trimEnd().split("\n").join("\n    ")}\n`).byId.keys(),
  ], [
    "hot",
  ]);
  const bad = () => parseOneRule(rule.replace("priority: high", "priority: urgent"));
  assert.throws(bad, WhatIfRuleError);
  assert.throws(bad, /: what-if\.yaml:4:11 hot: Field "priority"/);
  assert.throws(() => parseOneRule(`rules: []\n`), /Give exactly one rule, got 0/);
});
