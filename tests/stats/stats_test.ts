import assert from "node:assert/strict";
import type { SensorEvent } from "../../src/contract/schemas.ts";
import { average, formatStatsTable, StatsStore } from "../../src/stats/stats.ts";

function ev(value: number, sensor_id = "temp-001"): SensorEvent {
  return {
    event_id: crypto.randomUUID(),
    sensor_id,
    sensor_type: "temperature",
    value,
    unit: "°C",
    timestamp: "2026-11-25T21:00:00Z",
    metadata: {},
    schema_version: 1,
  };
}

Deno.test("StatsStore keeps count, sum, min, max and the newest value per sensor", () => {
  const s = new StatsStore();
  s.update(ev(20), 1000);
  s.update(ev(30), 3000);
  s.update(ev(10), 2000); // older event time: counted, but not the newest
  s.update(ev(99, "temp-002"), 1000);
  const t = s.get("temp-001")!;
  assert.equal(t.count, 3);
  assert.equal(average(t), 20);
  assert.equal(t.min, 10);
  assert.equal(t.max, 30);
  assert.equal(t.last_value, 30);
  assert.equal(t.last_update, 3000);
  assert.deepEqual(t.recent, [20, 30, 10]);
  assert.equal(s.size, 2);
});

Deno.test("StatsStore keeps a bounded window of recent values", () => {
  const s = new StatsStore(3);
  for (let i = 0; i < 10; i++) s.update(ev(i), i);
  assert.deepEqual(s.get("temp-001")!.recent, [7, 8, 9]);
});

Deno.test("formatStatsTable() prints one line per sensor with count and average", () => {
  const s = new StatsStore();
  s.update(ev(20), 1);
  s.update(ev(22), 2);
  const table = formatStatsTable(s.all());
  assert.match(table, /^sensor\s+type\s+count\s+avg/);
  assert.match(table, /temp-001\s+temperature\s+2\s+21\.00 °C/);
});

Deno.test("StatsStore keeps at most maxSensors sensors, forgetting the one it met first", () => {
  const s = new StatsStore(60, 3);
  for (const id of ["a", "b", "c"]) s.update(ev(1, id), 1);
  s.update(ev(2, "a"), 2); // an update does not make a sensor newer: eviction costs nothing per event
  s.update(ev(1, "d"), 3);
  assert.equal(s.size, 3);
  assert.equal(s.get("a"), undefined);
  assert.deepEqual(s.all().map((x) => x.sensor_id), ["b", "c", "d"]);
  assert.equal(s.evicted, 1);
});

Deno.test("StatsStore.unordered() gives every sensor once, the same objects as all()", () => {
  const s = new StatsStore(3, 10);
  for (const id of ["c", "a", "b", "a"]) {
    s.update({ sensor_id: id, sensor_type: "temperature", unit: "C", value: 1 } as never, 0);
  }
  assert.deepEqual(new Set(s.unordered()), new Set(s.all()));
  assert.equal([...s.unordered()].length, 3);
});
