import assert from "node:assert/strict";
import { alertId } from "../../src/alerts/alert_id.ts";

Deno.test("alertId() gives the ids already on the alerts topic for the same rule, group and event", () => {
  assert.equal(alertId("co2-critical", "sensor-1", "evt-1"), "ead7d516454ac716");
  assert.equal(alertId("temp-high", "Küche/°C", "42"), "e45876db56eedac5");
});
