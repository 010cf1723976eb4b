/**
 * LIMITS_TOPIC's follower while the broker is gone: its checks of the topic (every second) fail, and
 * that is said once, not once a second, and once more when a check passes again; its reader's
 * restarts are warnings. A broker of the test's own, which it kills and starts again.
 */
import assert from "node:assert/strict";
import { createLogger } from "../../../src/log.ts";
import { LimitsTopicFollower } from "../../../src/source/limits_topic.ts";
import { createKafka, kafkaSettingsFromEnv } from "../../../src/transport/kafka.ts";
import { createCompactedTopic, kafkaSh, uniqueNames, waitFor } from "../../helpers/kafka.ts";

Deno.test("the limits topic's follower with the broker gone: one warning, then one line when it can check again", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sensor-rules-limits-outage-broker-" });
  const address = await kafkaSh(dir, "up");
  const previous = Deno.env.get("KAFKA_BROKERS");
  Deno.env.set("KAFKA_BROKERS", address);
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({
    level: "info",
    sink: { write: (l) => lines.push(JSON.parse(l)), pretty: false },
  });
  const said = (msg: RegExp) => lines.filter((l) => msg.test(String(l.msg)));
  let follower: LimitsTopicFollower | null = null;
  try {
    const topic = `${uniqueNames("limits-outage").events}.limits`;
    await createCompactedTopic(topic, 1);
    follower = new LimitsTopicFollower(
      createKafka(kafkaSettingsFromEnv([address], {}), logger, { retries: 1 }),
      topic,
      "tests",
      logger,
      () => {},
    );
    await follower.start();
    await kafkaSh(dir, "kill");
    await waitFor(
      "the first failed check said",
      () => said(/^Cannot check the limits topic/).length > 0,
      60_000,
    );
    // Checks go on failing once a second (each as long as its requests' retries take) meanwhile.
    await new Promise((r) => setTimeout(r, 8000));
    const failing = said(/^Cannot check the limits topic/);
    assert.equal(failing.length, 1, JSON.stringify(failing));
    assert.equal(failing[0]!.level, "warn");
    await kafkaSh(dir, "start");
    await waitFor("a check passed again, said", () => said(/can be checked again/).length > 0, 90_000);
    const again = said(/can be checked again/);
    assert.equal(again.length, 1);
    assert.equal(again[0]!.level, "info");
    assert.ok(Number(again[0]!.failed_checks) >= 2, JSON.stringify(again[0]));
    assert.equal(said(/^Cannot check the limits topic/).length, 1);
    // A broker gone is the world, not a fault of the service: its reader's restarts (kafkajs's own)
    // are warnings, as the engine's consumer's are, not errors an operator is paged for.
    const restarts = said(/Restarting the consumer in/);
    assert.ok(restarts.length > 0, "the reader restarted while the broker was gone");
    assert.deepEqual(restarts.filter((l) => l.level !== "warn"), []);
  } finally {
    await follower?.stop();
    if (previous === undefined) Deno.env.delete("KAFKA_BROKERS");
    else Deno.env.set("KAFKA_BROKERS", previous);
    await kafkaSh(dir, "down", "--clean");
  }
});
