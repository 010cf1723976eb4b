import assert from "node:assert/strict";
import type { SensorStats } from "../../src/stats/stats.ts";
import { decodeSensors, encodeSensors, sensorBuffers } from "../../src/workers/sensors.ts";

const stats = (id: string, recent: number[], extra: Partial<SensorStats> = {}): SensorStats => ({
  sensor_id: id,
  sensor_type: "temperature",
  unit: "°C",
  location: "building-a/floor-1",
  count: recent.length,
  sum: recent.reduce((a, b) => a + b, 0),
  min: Math.min(...recent),
  max: Math.max(...recent),
  last_value: recent.at(-1) ?? 0,
  last_update: Date.UTC(2026, 11, 1, 2, 0, 0),
  recent,
  ...extra,
});

Deno.test("decodeSensors() gives back what encodeSensors() was given, field by field", () => {
  const input = [
    stats("t-1", [21.5, 22, -3.25]),
    // A sensor without values yet: min and max are still the infinities StatsStore starts them at.
    stats("t-2", [], { location: null, min: Infinity, max: -Infinity, count: 0 }),
    stats("h-1", Array.from({ length: 60 }, (_, i) => i / 7), { sensor_type: "humidity", unit: "%" }),
  ];
  assert.deepEqual(decodeSensors(encodeSensors(input)), input);
  assert.deepEqual(decodeSensors(encodeSensors([])), []);
});

Deno.test("encodeSensors() survives the move of its buffers to another thread (structured clone with transfer)", () => {
  const input = [stats("t-1", [1, 2, 3]), stats("t-2", [4])];
  const encoded = encodeSensors(input);
  const moved = structuredClone(encoded, { transfer: sensorBuffers(encoded) });
  assert.equal(encoded.numbers.length, 0, "the sender's buffers were moved, not copied");
  assert.deepEqual(decodeSensors(moved), input);
});
