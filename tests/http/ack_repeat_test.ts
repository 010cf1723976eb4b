/**
 * An acknowledgement asked again (a double click, a script in a loop) answers with the alert as it was
 * acknowledged, as the engine does (`AlertTracker.acknowledge` returns the acknowledged alert), but is
 * not a new alert of the live feed: repeated, it pushed the real recent alerts out of `/api/alerts`.
 */
import assert from "node:assert/strict";
import type { SensorAlert } from "../../src/contract/schemas.ts";
import { acknowledge } from "../../src/http/api.ts";
import { LiveFeed } from "../../src/http/live.ts";
import type { Service } from "../../src/service.ts";

function alert(i: number): SensorAlert {
  return {
    alert_id: `a${i}`,
    rule_id: "r",
    sensor_id: `s${i}`,
    priority: "high",
    state: "firing",
  } as SensorAlert;
}

Deno.test("an acknowledgement repeated 300 times is one entry of the recent alerts, and one flush", async () => {
  const live = new LiveFeed({ flushMs: 60_000 });
  let flushes = 0;
  live.snapshot = () => {
    flushes++;
    return [];
  };
  const reader = live.subscribe([]).getReader();
  for (let i = 0; i < 10; i++) live.onAlert(alert(i));
  const acked = {
    ...alert(3),
    acknowledged: true,
    ack_update: true,
    acknowledged_by: "x",
    acknowledged_at: "2026-01-01T00:00:00.000Z",
  };
  const service = { pipeline: {}, acknowledge: () => Promise.resolve({ ...acked }) } as unknown as Service;
  for (let i = 0; i < 300; i++) {
    const r = await acknowledge(service, live, "a3", "x");
    assert.equal(r.ok, true);
  }
  const recent = live.recentAlerts();
  assert.deepEqual(
    recent.map((a) => a.alert_id),
    ["a0", "a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8", "a9", "a3"],
    "the real recent alerts are still there, the acknowledgement once",
  );
  assert.equal(flushes, 1);
  await reader.cancel();
});
