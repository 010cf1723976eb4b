import assert from "node:assert/strict";
import { decodeEvent } from "../../src/decode/decode.ts";
import { DEFAULT_SENSORS, EventGenerator, sensorFleet } from "../../src/simulator/sensors.ts";
import { parseSimulateArgs } from "../../src/simulator/cli.ts";

Deno.test("EventGenerator emits contract events for the six sensors of the original design", () => {
  const gen = new EventGenerator({ seed: 1, anomalyProbability: 0 });
  const events = Array.from({ length: 600 }, () => gen.next(Date.UTC(2026, 10, 25)));
  assert.deepEqual([...new Set(events.map((e) => e.sensor_id))], DEFAULT_SENSORS.map((s) => s.sensor_id));
  for (const e of events) {
    const r = decodeEvent(JSON.stringify(e), `${e.sensor_type}:${e.sensor_id}`);
    assert.ok(r.ok, JSON.stringify(r));
    const s = DEFAULT_SENSORS.find((x) => x.sensor_id === e.sensor_id)!;
    assert.ok(
      Math.abs(e.value - s.base) <= s.spread + 0.01,
      `${e.sensor_id} ${e.value} within ${s.base}±${s.spread}`,
    );
    assert.equal(e.location, "Building A, Floor 1");
    assert.equal(e.metadata!.firmware_version, "1.2.3");
    const battery = e.metadata!.battery_level as number;
    assert.ok(battery >= 60 && battery <= 100);
  }
});

Deno.test("EventGenerator is reproducible with a seed and makes anomalies at the given rate", () => {
  const a = new EventGenerator({ seed: 7, anomalyProbability: 0.5, runId: "x" });
  const b = new EventGenerator({ seed: 7, anomalyProbability: 0.5, runId: "x" });
  const ea = Array.from({ length: 100 }, () => a.next(0));
  const eb = Array.from({ length: 100 }, () => b.next(0));
  assert.deepEqual(ea, eb);
  const temps = ea.filter((e) => e.sensor_type === "temperature");
  const outOfRange = temps.filter((e) => e.value < 10 || e.value > 35).length;
  assert.ok(
    outOfRange > temps.length * 0.3 && outOfRange < temps.length * 0.7,
    `${outOfRange} of ${temps.length}`,
  );
});

Deno.test("sensorFleet() adds generated sensors with unique ids", () => {
  const fleet = sensorFleet(10_000);
  assert.equal(fleet.length, 10_006);
  assert.equal(new Set(fleet.map((s) => s.sensor_id)).size, 10_006);
});

Deno.test("sensorFleet() spreads generated sensors over 20 locations, for the dashboard's groups", () => {
  const fleet = sensorFleet(1000);
  const gen = new EventGenerator({ seed: 1, sensors: fleet });
  const events = Array.from({ length: fleet.length }, () => gen.next(0));
  const generated = events.slice(DEFAULT_SENSORS.length);
  assert.ok(events.slice(0, DEFAULT_SENSORS.length).every((e) => e.location === "Building A, Floor 1"));
  const locations = new Map<string, number>();
  for (const e of generated) locations.set(e.location!, (locations.get(e.location!) ?? 0) + 1);
  assert.equal(locations.size, 20);
  assert.deepEqual(new Set(locations.values()), new Set([50]));
  assert.ok(locations.has("Building E, Floor 4"));
});

Deno.test("parseSimulateArgs() reads rate, interval, count, duration and refuses bad values", () => {
  const o = parseSimulateArgs(["--count", "10", "--rate", "0", "--seed", "3", "--sensors", "4"], {});
  assert.ok(o !== "help");
  assert.equal(o.count, 10);
  assert.equal(o.rate, 0);
  assert.equal(o.seed, 3);
  const interval = parseSimulateArgs(["--interval", "500"], {});
  assert.ok(interval !== "help");
  assert.equal(interval.rate, 12, "six sensors every 500 ms");
  assert.throws(() => parseSimulateArgs(["--anomaly", "2"], {}), TypeError);
  assert.deepEqual((parseSimulateArgs([], { KAFKA_BROKERS: "a:1,b:2" }) as { brokers: string[] }).brokers, [
    "a:1",
    "b:2",
  ]);
});

Deno.test("parseSimulateArgs() reads SENSOR_PARTITIONS and refuses one that is not a whole number", () => {
  const partitions = (env: Record<string, string>) =>
    (parseSimulateArgs([], env) as { partitions: number }).partitions;
  assert.equal(partitions({}), 6);
  assert.equal(partitions({ SENSOR_PARTITIONS: "" }), 6);
  assert.equal(partitions({ SENSOR_PARTITIONS: "12" }), 12);
  assert.throws(() => partitions({ SENSOR_PARTITIONS: "six" }), {
    name: "TypeError",
    message: 'SENSOR_PARTITIONS must be an integer of at least 1, got "six"',
  });
});
