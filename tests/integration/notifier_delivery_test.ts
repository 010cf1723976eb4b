/**
 * The notifier stage against the real broker and a real webhook receiver: a receiver outage in
 * mid-stream loses nothing and never slows the engine; a SIGKILLed notifier stage redelivers.
 */
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { DlqRecord, SensorAlert, type SensorEventInput } from "../../src/contract/schemas.ts";
import {
  createTopics,
  groupLag,
  produce,
  readTopic,
  topicEnv,
  uniqueNames,
  waitFor,
} from "../helpers/kafka.ts";
import { type Received, Receiver } from "../helpers/receiver.ts";
import { startService } from "../helpers/service.ts";
import { print } from "../../src/log.ts";

const KEY = crypto.getRandomValues(new Uint8Array(24));
const SECRET = `whsec_${btoa(String.fromCharCode(...KEY))}`;

/** A rules dir of our own: the default rules and a notifiers.yaml sending everything to the webhook. */
async function rulesDir(delivery: string): Promise<string> {
  await Deno.mkdir("tests/artifacts", { recursive: true });
  const dir = await Deno.makeTempDir({ dir: "tests/artifacts", prefix: "notify-it-" });
  await Deno.copyFile("rules/default.yaml", `${dir}/default.yaml`);
  await Deno.writeTextFile(
    `${dir}/notifiers.yaml`,
    `notifiers:
  - name: hook
    plugin: webhook
    options: { url: "\${NOTIFY_WEBHOOK_URL}", secret: "\${NOTIFY_WEBHOOK_SECRET}", timeout_ms: 2000, allow_private_targets: true }
default_receivers: [hook]
delivery: ${delivery}
`,
  );
  return dir;
}

function serviceEnv(n: ReturnType<typeof uniqueNames>, dir: string, url: string): Record<string, string> {
  return {
    ...topicEnv(n),
    SENSOR_PARTITIONS: "3",
    RULES_DIR: dir,
    NOTIFY_WEBHOOK_URL: url,
    NOTIFY_WEBHOOK_SECRET: SECRET,
    HTTP_PORT: "0",
  };
}

/** Event `i` is the first of its own sensor's episode, out of range: exactly one firing alert. */
function outOfRange(prefix: string, i: number): { key: string; value: string } {
  const e: SensorEventInput = {
    event_id: `${prefix}-${i}`,
    sensor_id: `${prefix}-temp-${i}`,
    sensor_type: "temperature",
    value: 50,
    unit: "°C",
    timestamp: new Date(Date.UTC(2026, 10, 25, 21, 0, 0) + i * 1000).toISOString(),
    location: "Building B",
    metadata: {},
  };
  return { key: `temperature:${e.sensor_id}`, value: JSON.stringify(e) };
}

function verified(r: Received): boolean {
  const id = r.headers.get("webhook-id");
  const ts = r.headers.get("webhook-timestamp");
  const mac = createHmac("sha256", KEY).update(`${id}.${ts}.${r.body}`).digest("base64");
  return r.headers.get("webhook-signature") === `v1,${mac}`;
}

const alertIdOf = (r: Received) => JSON.parse(r.body).alert.alert_id as string;

Deno.test("a webhook receiver down for 30 s mid-stream: every alert delivered or dead-lettered, engine never slowed", async () => {
  const n = uniqueNames("notify-outage");
  await createTopics([n.events, n.alerts, n.dlq, n.aggregates], 3);
  const receiver = await Receiver.start(200);
  const dir = await rulesDir(
    "{ max_attempts: 100, backoff_base: 200ms, backoff_max: 2s, give_up_after: 5m, breaker_failures: 5, breaker_cooldown: 2s }",
  );
  const service = startService(serviceEnv(n, dir, `${receiver.url}/hook`));
  try {
    await service.waitForLine(/Consuming from Kafka/, 60_000);
    const total = 45;
    let i = 0;
    await produce(n.events, Array.from({ length: 15 }, () => outOfRange("o", i++)));
    await waitFor(
      "the first alerts delivered",
      () => new Set(receiver.received.map(alertIdOf)).size >= 15,
      60_000,
    );

    await receiver.down();
    const outageStart = Date.now();
    let maxLag = 0;
    // 15 events spread over the outage; the engine keeps up with each of them.
    for (let k = 0; k < 15; k++) {
      await produce(n.events, [outOfRange("o", i++)]);
      await new Promise((r) => setTimeout(r, 1500));
      maxLag = Math.max(maxLag, await groupLag(n.group, n.events));
    }
    const alertsDuringOutage = (await readTopic(n.alerts, (v) => v.length >= 30, 10_000)).length;
    await new Promise((r) => setTimeout(r, Math.max(0, 30_000 - (Date.now() - outageStart))));
    const outageMs = Date.now() - outageStart;
    await receiver.up();
    await produce(n.events, Array.from({ length: 15 }, () => outOfRange("o", i++)));

    const dlqIds = async () =>
      (await readTopic(n.dlq, () => false, 1500)).map((r) => DlqRecord.parse(JSON.parse(r.value)))
        .filter((d) => d.stage === "notify").map((d) =>
          SensorAlert.parse(JSON.parse(d.original_value!)).alert_id
        );
    await waitFor("every alert delivered or dead-lettered", async () => {
      const delivered = new Set(receiver.received.map(alertIdOf));
      return delivered.size + (await dlqIds()).length >= total &&
        (await groupLag(n.notifierGroup, n.alerts)) === 0;
    }, 90_000);

    const onTopic = (await readTopic(n.alerts, (v) => v.length >= total, 10_000)).map((r) =>
      SensorAlert.parse(JSON.parse(r.value)).alert_id
    );
    const delivered = new Set(receiver.received.map(alertIdOf));
    const dead = await dlqIds();
    assert.equal(new Set(onTopic).size, total, "one alert per event on the alerts topic");
    assert.deepEqual([...new Set([...delivered, ...dead])].sort(), [...new Set(onTopic)].sort(), "none lost");
    assert.equal(
      delivered.size + dead.length,
      total,
      "counted exactly: delivered or dead-lettered, never both",
    );
    assert.ok(receiver.received.every(verified), "every request is signed with the secret");
    assert.ok(outageMs >= 30_000, `outage lasted ${outageMs} ms`);
    assert.equal(alertsDuringOutage, 30, "the engine raised every alert while the receiver was down");
    assert.ok(maxLag <= 1, `engine consumer lag during the outage peaked at ${maxLag}`);
    print(
      `outage ${outageMs} ms: delivered ${delivered.size}, dead-lettered ${dead.length}, ` +
        `requests ${receiver.received.length}, engine lag peak ${maxLag}`,
    );
  } finally {
    const status = await service.stop("SIGTERM");
    await receiver.down();
    assert.equal(status.code, 0, service.stderr().slice(-2000));
  }
});

Deno.test("a SIGKILLed notifier stage restarted mid-stream delivers every alert at least once, duplicates share a webhook-id", async () => {
  const n = uniqueNames("notify-kill");
  await createTopics([n.events, n.alerts, n.dlq, n.aggregates], 3);
  // A slow receiver, so the kill lands in the middle of the stream.
  const receiver = await Receiver.start({ status: 200, delayMs: 40 });
  const dir = await rulesDir("{ max_in_flight: 2 }");
  const env = serviceEnv(n, dir, `${receiver.url}/hook`);
  const engine = startService(env, ["--role", "engine"]);
  let notifier = startService(env, ["--role", "notifier"]);
  try {
    await engine.waitForLine(/Consuming from Kafka/, 60_000);
    await notifier.waitForLine(/Joined consumer group/, 60_000);
    const total = 150;
    await produce(n.events, Array.from({ length: total }, (_, i) => outOfRange("k", i)));
    await waitFor("some deliveries", () => receiver.received.length >= 20, 60_000);
    const killedAfter = receiver.received.length;
    await notifier.stop("SIGKILL");
    assert.ok(killedAfter < total, `killed after ${killedAfter} of ${total} deliveries`);
    notifier = startService(env, ["--role", "notifier"]);
    await waitFor(
      "every alert delivered",
      () => new Set(receiver.received.map(alertIdOf)).size >= total,
      120_000,
    );

    const onTopic = (await readTopic(n.alerts, (v) => v.length >= total, 10_000)).map((r) =>
      SensorAlert.parse(JSON.parse(r.value))
    );
    assert.equal(onTopic.length, total);
    const idsByAlert = new Map<string, Set<string>>();
    for (const r of receiver.received) {
      const set = idsByAlert.get(alertIdOf(r)) ?? new Set();
      set.add(r.headers.get("webhook-id")!);
      idsByAlert.set(alertIdOf(r), set);
    }
    for (const a of onTopic) {
      assert.deepEqual([...idsByAlert.get(a.alert_id) ?? []], [`${a.alert_id}.firing`], a.alert_id);
    }
    const duplicates = receiver.received.length - idsByAlert.size;
    print(
      `delivered ${receiver.received.length} requests for ${total} alerts (${duplicates} duplicates)`,
    );
  } finally {
    const codes = [(await notifier.stop("SIGTERM")).code, (await engine.stop("SIGTERM")).code];
    await receiver.down();
    assert.deepEqual(codes, [0, 0], notifier.stderr().slice(-2000));
  }
});
