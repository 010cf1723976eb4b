import assert from "node:assert/strict";
import { SensorAlert } from "../../src/contract/schemas.ts";

const base = {
  alert_id: "a1",
  sensor_id: "s1",
  sensor_type: "co2",
  priority: "high",
  message: "CO2 high",
  value: 1200,
  threshold: 1000,
  timestamp: "2026-01-01T00:00:00Z",
  acknowledged: false,
  rule_id: "co2-high",
};

Deno.test("SensorAlert accepts another producer's alert whose extra fields are not the service's types", () => {
  const other = { ...base, repeat: "twice", group: 5, kind: "custom", ack_update: "yes", vendor: { x: 1 } };
  const parsed = SensorAlert.safeParse(other);
  assert.ok(parsed.success);
  assert.deepEqual(parsed.data, { ...other, state: "firing", labels: {} });
});
