/**
 * The dashboard in headless Chromium tags an alert row with what `/api/alerts` says keeps it from
 * being notified: the alert that inhibits it, or the storm guard that holds it back. A stand-in server
 * answers the stream and `/api/alerts`.
 */
import assert from "node:assert/strict";
import { onStandIn, standIn, streamedAlert, streamResponse } from "../helpers/dashboard.ts";

Deno.test("the dashboard tags an inhibited alert with its source and a held one with the storm guard", async () => {
  const alert = (id: string, rule: string) => streamedAlert(id, { rule_id: rule });
  const alerts = [
    alert("inhibited", "sensor-hot"),
    alert("held", "humidity-spike"),
    alert("plain", "sensor-hot"),
  ];
  const shown = [
    {
      ...alerts[0],
      silenced_by: [],
      inhibited_by: { alert_id: "a-9", rule_id: "gateway-down", sensor_id: "gw-1" },
    },
    {
      ...alerts[1],
      silenced_by: [],
      inhibited_by: null,
      held_by_storm_guard: {
        rule_id: "humidity-spike",
        held_at: new Date().toISOString(),
        summarized: false,
      },
    },
    { ...alerts[2], silenced_by: [], inhibited_by: null, held_by_storm_guard: null },
  ];
  const server = standIn((path) => {
    if (path === "/api/alerts") return Response.json({ active: shown, recent: [] });
    return path === "/api/stream" ? streamResponse(["alerts", { alerts }]) : null;
  });
  await onStandIn(server, async (tab, errors) => {
    const inhibited = tab.locator('[data-alert-id="inhibited"] .noise.inhibited');
    await inhibited.waitFor({ timeout: 20_000 });
    assert.equal(await inhibited.textContent(), "inhibited by gateway-down (gw-1)");
    const held = tab.locator('[data-alert-id="held"] .noise.held');
    await held.waitFor({ timeout: 20_000 });
    assert.equal(await held.textContent(), "held by storm guard");
    assert.equal(await tab.locator('[data-alert-id="plain"] .noise').count(), 0);
    assert.equal(
      await tab.locator('[data-alert-id="inhibited"] .noise').count(),
      1,
      "one tag, not one per refresh",
    );
    assert.deepEqual(errors, []);
  });
});
