/**
 * The firing view of inhibition against the real broker, past hostile records on the alerts topic:
 * not JSON, the wrong shape, a tombstone, a large record, invalid UTF-8. It reads to the end (the
 * notifier stage does not wait for it forever) and knows the valid alerts around them.
 */
import assert from "node:assert/strict";
import { createTopics, kafka, produce, uniqueNames } from "../../helpers/kafka.ts";
import { alert, captureLogger } from "../../helpers/notifiers.ts";
import type { SensorAlert } from "../../../src/contract/schemas.ts";
import { FiringView } from "../../../src/notifiers/firing_view.ts";

Deno.test("the firing view reads past hostile records on the alerts topic and keeps the valid alerts", async () => {
  const n = uniqueNames("firing-view-hostile");
  await createTopics([n.alerts], 1);
  const first = alert({ alert_id: "gw-1", rule_id: "gateway-down" });
  const last = alert({ alert_id: "gw-2", rule_id: "gateway-down" });
  await produce(n.alerts, [
    { key: "k", value: JSON.stringify(first) },
    { key: "k", value: "{not json" },
    { key: "k", value: JSON.stringify({ alert_id: 7, state: "firing" }) },
    { key: "k", value: null },
    { key: "k", value: "[".repeat(200_000) },
    { key: "k", value: new Uint8Array([0xff, 0xfe, 0x7b, 0x22]) },
    { key: "k", value: JSON.stringify({ ...first, alert_id: "x".repeat(500_000) }) },
    { key: "k", value: JSON.stringify(last) },
  ]);
  const seen: SensorAlert[] = [];
  const view = new FiringView({
    kafka: kafka(),
    alertsTopic: n.alerts,
    groupPrefix: n.notifierGroup,
    logger: captureLogger().logger,
    observe: (a) => seen.push(a),
  });
  try {
    await view.start();
    // An id of 500,000 characters is not an alert's (at most 256 printable ASCII characters: it
    // becomes a notification header), as the notifier stage dead-letters it.
    assert.deepEqual(
      seen.map((a) => a.alert_id),
      ["gw-1", "gw-2"],
      "every record that is an alert, in order",
    );
  } finally {
    await view.stop();
  }
});
