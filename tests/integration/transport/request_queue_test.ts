/**
 * The mended request queue (src/transport/request_queue.ts) in the service's own Kafka client, against
 * the real broker: an idle connection does not wake up.
 */
import assert from "node:assert/strict";
import RequestQueue from "kafkajs/src/network/requestQueue/index.js";
import { createLogger } from "../../../src/log.ts";
import { createKafka, kafkaSettingsFromEnv } from "../../../src/transport/kafka.ts";
import { brokers } from "../../helpers/kafka.ts";

Deno.test("an idle connection of the service's Kafka client checks its request queue only when answered", async () => {
  const kafka = createKafka(kafkaSettingsFromEnv(brokers(), {}), createLogger({ level: "error" }));
  const admin = kafka.admin();
  const proto = RequestQueue.prototype;
  const check = proto.checkPendingRequests;
  let checks = 0;
  let answers = 0;
  await admin.connect();
  try {
    await admin.listTopics();
    proto.checkPendingRequests = function (this: unknown) {
      checks++;
      return check.call(this);
    };
    const fulfill = proto.fulfillRequest;
    proto.fulfillRequest = function (this: unknown, response: unknown) {
      answers++;
      return fulfill.call(this, response);
    };
    try {
      // An admin sends nothing by itself: kafkajs 2.2.4 checked its queue ~1,000 times a second anyway.
      for (let i = 0; i < 10; i++) await new Promise((r) => setTimeout(r, 20));
      await admin.listTopics();
    } finally {
      proto.fulfillRequest = fulfill;
    }
    assert.ok(answers >= 1, "the second request was answered");
    assert.equal(checks, answers, "one check per answer, none while idle");
  } finally {
    proto.checkPendingRequests = check;
    await admin.disconnect();
  }
});
