/** `/api/sensors` shows each sensor's effective per-sensor limits and where they came from. */
import assert from "node:assert/strict";
import { waitFor } from "../helpers/kafka.ts";
import { httpUrl, startService } from "../helpers/service.ts";

const RULES = `rules:
  - id: temperature-per-sensor
    sensor_type: temperature
    limits: temperature-band
    priority: high
limits:
  temperature-band:
    default: { min: 10, max: 35 }
    sensor_id:
      temp-002: { max: 30 }
`;

Deno.test("/api/sensors gives each sensor's effective limits, their table, level and file:line", async () => {
  await Deno.mkdir("tests/artifacts", { recursive: true });
  const rulesDir = await Deno.makeTempDir({ dir: "tests/artifacts", prefix: "rules-" });
  await Deno.writeTextFile(`${rulesDir}/limits.yaml`, RULES);
  const service = startService({ KAFKA_BROKERS: "", RULES_DIR: rulesDir }, ["--rate", "30", "--seed", "7"]);
  try {
    const base = await httpUrl(service);
    const sensors = await waitFor("both temperature sensors", async () => {
      const body = await (await fetch(`${base}/api/sensors`)).json();
      const temps = (body.sensors ?? []).filter((s: { sensor_type: string }) =>
        s.sensor_type === "temperature"
      );
      return temps.length === 2 && temps;
    });
    const byId = Object.fromEntries(sensors.map((s: { sensor_id: string }) => [s.sensor_id, s]));
    assert.deepEqual(byId["temp-001"].limits, [{
      rule: "temperature-per-sensor",
      min: 10,
      max: 35,
      from: "default",
      table: "temperature-band",
      source: `${rulesDir}/limits.yaml:8`,
    }]);
    assert.deepEqual(byId["temp-002"].limits, [{
      rule: "temperature-per-sensor",
      min: null,
      max: 30,
      from: "sensor_id",
      key: "temp-002",
      table: "temperature-band",
      source: `${rulesDir}/limits.yaml:10`,
    }]);
    // The sparkline's band is the sensor's own.
    assert.deepEqual(byId["temp-002"].threshold, { min: null, max: 30, rule: "temperature-per-sensor" });
  } finally {
    await service.stop();
  }
});
