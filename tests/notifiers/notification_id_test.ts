import assert from "node:assert/strict";
import { notificationId } from "../../src/notifiers/dispatcher.ts";
import { alert } from "../helpers/notifiers.ts";

Deno.test("notificationId() tells an escalation, a flapping and a stable notice from the episode's other notices", () => {
  const ids = [
    alert({ alert_id: "a", repeat: 0, escalation: 0 }),
    alert({ alert_id: "a", repeat: 0, escalation: 1 }),
    alert({ alert_id: "a", repeat: 2, escalation: 1 }),
    alert({ alert_id: "a", repeat: 0, flapping: true }),
    alert({ alert_id: "a", repeat: 0, flapping: false }),
    alert({ alert_id: "a", state: "resolved", escalation: 1 }),
  ].map(notificationId);
  assert.deepEqual(ids, [
    "a.firing",
    "a.firing.esc1",
    "a.firing.2.esc1",
    "a.firing.flapping",
    "a.firing.stable",
    "a.resolved.esc1",
  ]);
});
