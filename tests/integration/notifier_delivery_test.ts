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
  kafka,
  produce,
  readTopic,
  topicEnv,
  uniqueNames,
  waitFor,
} from "../helpers/kafka.ts";
import { alertRecord } from "../helpers/notifiers.ts";
import { type Received, Receiver } from "../helpers/receiver.ts";
import { httpUrl, startService } from "../helpers/service.ts";
import { print } from "../../src/log.ts";
import { notifyDlqRecord } from "../../src/notifiers/dead_letter.ts";

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

/** A rules dir whose notifiers.yaml is `yaml` (the default rules are not needed: alerts are produced directly). */
async function notifiersDir(yaml: string): Promise<string> {
  await Deno.mkdir("tests/artifacts", { recursive: true });
  const dir = await Deno.makeTempDir({ dir: "tests/artifacts", prefix: "notify-it-" });
  await Deno.writeTextFile(`${dir}/notifiers.yaml`, yaml);
  return dir;
}

const alertIdsOf = (r: Received): string[] => {
  const body = JSON.parse(r.body);
  return body.type === "alert.group"
    ? body.notifications.map((x: { alert: { alert_id: string } }) => x.alert.alert_id)
    : [body.alert.alert_id];
};

Deno.test("a hanging receiver does not hold up a healthy one; once it answers, every offset is committed", async () => {
  const n = uniqueNames("notify-slow");
  await createTopics([n.events, n.alerts, n.dlq, n.aggregates], 3);
  const slow = await Receiver.start("hang");
  const healthy = await Receiver.start(200);
  const dir = await notifiersDir(`notifiers:
  - { name: slow, plugin: webhook, options: { url: "${slow.url}/hook", timeout_ms: 600000, allow_private_targets: true } }
  - { name: healthy, plugin: webhook, options: { url: "${healthy.url}/hook", allow_private_targets: true } }
default_receivers: [slow, healthy]
delivery: { timeout: 10m, give_up_after: 20m, max_in_flight: 2 }
`);
  const total = 30;
  const service = startService(serviceEnv(n, dir, `${healthy.url}/unused`), ["--role", "notifier"]);
  try {
    await service.waitForLine(/Joined consumer group/, 60_000);
    await produce(n.alerts, Array.from({ length: 10 }, (_, i) => alertRecord("s", i)));
    await waitFor("the slow receiver's window to fill", () => slow.hanging === 2, 60_000);
    // These arrive while the slow receiver holds the first ones, in later batches of each partition.
    for (let k = 1; k < 3; k++) {
      await produce(n.alerts, Array.from({ length: 10 }, (_, i) => alertRecord("s", k * 10 + i)));
    }
    await waitFor(
      "the healthy receiver to get every alert",
      () => new Set(healthy.received.flatMap(alertIdsOf)).size === total,
      90_000,
    );
    assert.equal(slow.hanging, 2, "the slow receiver still holds its in-flight window");
    assert.ok(slow.received.length <= 2, `requests to the slow receiver: ${slow.received.length}`);
    assert.ok(await groupLag(n.notifierGroup, n.alerts) > 0, "nothing committed past the slow receiver");

    slow.answer = 200;
    slow.release();
    await waitFor(
      "the slow receiver to get every alert",
      () => new Set(slow.received.flatMap(alertIdsOf)).size === total,
      90_000,
    );
    await waitFor(
      "every offset committed",
      async () => await groupLag(n.notifierGroup, n.alerts) === 0,
      30_000,
    );
    const dead = await readTopic(n.dlq, () => false, 1000);
    assert.equal(dead.length, 0, "nothing dead-lettered");
  } finally {
    const status = await service.stop("SIGTERM");
    await slow.down();
    await healthy.down();
    assert.equal(status.code, 0, service.stderr().slice(-2000));
  }
});

Deno.test("a notifier stage killed while a group's notification hangs redelivers the group with the same ids", async () => {
  const n = uniqueNames("notify-group-kill");
  await createTopics([n.events, n.alerts, n.dlq, n.aggregates], 3);
  const receiver = await Receiver.start("hang");
  const dir = await notifiersDir(`notifiers:
  - { name: hook, plugin: webhook, options: { url: "${receiver.url}/hook", timeout_ms: 600000, allow_private_targets: true } }
routes:
  - { receivers: [hook], group_by: [rule_id], group_wait: 3s, group_interval: 1m }
delivery: { timeout: 10m, give_up_after: 20m }
`);
  const total = 12;
  // On the topic before the stage starts: its first fetch holds all of them, well within the group wait.
  await produce(n.alerts, Array.from({ length: total }, (_, i) => alertRecord("g", i)));
  const env = serviceEnv(n, dir, `${receiver.url}/unused`);
  let notifier = startService(env, ["--role", "notifier"]);
  try {
    await waitFor("the group's notification", () => receiver.hanging === 1, 60_000);
    const first = receiver.received[0]!;
    assert.deepEqual(alertIdsOf(first).sort(), Array.from({ length: total }, (_, i) => `g-${i}`).sort());
    await notifier.stop("SIGKILL");
    receiver.answer = 200;
    receiver.release();
    notifier = startService(env, ["--role", "notifier"]);
    await waitFor("the group delivered again", () => receiver.received.length >= 2, 60_000);
    await waitFor(
      "every offset committed",
      async () => await groupLag(n.notifierGroup, n.alerts) === 0,
      30_000,
    );
    const again = receiver.received[1]!;
    assert.equal(again.headers.get("webhook-id"), first.headers.get("webhook-id"), "same delivery id");
    assert.deepEqual(alertIdsOf(again).sort(), alertIdsOf(first).sort(), "the same alerts");
    assert.equal(receiver.received.length, 2, "one notification per group, before and after the restart");
  } finally {
    const status = await notifier.stop("SIGTERM");
    await receiver.down();
    assert.equal(status.code, 0, notifier.stderr().slice(-2000));
  }
});

Deno.test("a notifier stage stopped while a notification is in flight lets it finish: restarted, it sends nothing again", async () => {
  const n = uniqueNames("notify-stop-in-flight");
  await createTopics([n.events, n.alerts, n.dlq, n.aggregates], 3);
  // Answered 12 s after it arrives: the stop comes while the receiver already has it, and the answer
  // after the 10 s a source waits by default for its batches (the grace here is 15 s).
  const receiver = await Receiver.start({ status: 200, delayMs: 12_000 });
  const dir = await notifiersDir(`notifiers:
  - { name: hook, plugin: webhook, options: { url: "${receiver.url}/hook", timeout_ms: 20000, allow_private_targets: true } }
default_receivers: [hook]
`);
  await produce(n.alerts, [alertRecord("inflight", 0)]);
  const env = { ...serviceEnv(n, dir, `${receiver.url}/unused`), SHUTDOWN_TIMEOUT_MS: "30000" };
  let notifier = startService(env, ["--role", "notifier"]);
  try {
    await waitFor("the notification to arrive", () => receiver.received.length === 1, 60_000);
    const stopped = await notifier.stop("SIGTERM");
    assert.equal(stopped.code, 0, notifier.stderr().slice(-2000));
    receiver.answer = 200;
    notifier = startService(env, ["--role", "notifier"]);
    const base = await httpUrl(notifier);
    await waitFor(
      "the restarted stage to join",
      async () => (await fetch(`${base}/readyz`)).status === 200,
      60_000,
    );
    // Committed once delivered: a notification the stop gave up would be sent again before this.
    await waitFor(
      "every offset committed",
      async () => await groupLag(n.notifierGroup, n.alerts) === 0,
      60_000,
    );
    assert.deepEqual(receiver.received.map(alertIdOf), ["inflight-0"], "delivered once across the restart");
  } finally {
    const status = await notifier.stop("SIGTERM");
    await receiver.down();
    assert.equal(status.code, 0, notifier.stderr().slice(-2000));
  }
});

Deno.test("alerts that arrive during group_wait join the group, and an ungrouped route is not held by it", async () => {
  const n = uniqueNames("notify-group-wait");
  // One partition: "Batch done" then says the stage has taken every alert produced so far.
  await createTopics([n.events, n.alerts, n.dlq, n.aggregates], 1);
  const grouped = await Receiver.start(200);
  const direct = await Receiver.start(200);
  const dir = await notifiersDir(`notifiers:
  - { name: grouped, plugin: webhook, options: { url: "${grouped.url}/hook", allow_private_targets: true } }
  - { name: direct, plugin: webhook, options: { url: "${direct.url}/hook", allow_private_targets: true } }
routes:
  - { match: { rule_id: temperature-out-of-range }, receivers: [grouped], group_by: [rule_id], group_wait: 10s, group_interval: 1m }
  - { match: { rule_id: humidity-out-of-range }, receivers: [direct] }
`);
  const service = startService(
    { ...serviceEnv(n, dir, `${direct.url}/unused`), LOG_LEVEL: "debug" },
    ["--role", "notifier"],
  );
  try {
    await service.waitForLine(/Joined consumer group/, 60_000);
    await produce(n.alerts, Array.from({ length: 3 }, (_, i) => alertRecord("w", i)));
    await service.waitForLine(/Batch done/, 30_000);
    await produce(n.alerts, [
      ...Array.from({ length: 2 }, (_, i) => alertRecord("w", 3 + i)),
      ...Array.from({ length: 2 }, (_, i) => alertRecord("h", i, { rule_id: "humidity-out-of-range" })),
    ]);
    await waitFor("the ungrouped alerts", () => direct.received.length === 2, 30_000);
    assert.equal(grouped.received.length, 0, "the ungrouped route did not wait for the group");
    assert.ok(
      await groupLag(n.notifierGroup, n.alerts) >= 5,
      "the grouped alerts' offsets wait for their group's notification",
    );
    await waitFor("the group's notification", () => grouped.received.length >= 1, 60_000);
    await waitFor(
      "every offset committed",
      async () => await groupLag(n.notifierGroup, n.alerts) === 0,
      30_000,
    );
    assert.equal(grouped.received.length, 1, "one notification for the group");
    assert.deepEqual(alertIdsOf(grouped.received[0]!).sort(), ["w-0", "w-1", "w-2", "w-3", "w-4"]);
  } finally {
    const status = await service.stop("SIGTERM");
    await grouped.down();
    await direct.down();
    assert.equal(status.code, 0, service.stderr().slice(-2000));
  }
});

Deno.test("dlq:replay against the DLQ topic, run twice, re-sends each dead-lettered notification once", async () => {
  const n = uniqueNames("notify-replay");
  await createTopics([n.dlq], 1);
  const receiver = await Receiver.start(200);
  const dir = await notifiersDir(`notifiers:
  - { name: hook, plugin: webhook, options: { url: "${receiver.url}/hook", allow_private_targets: true } }
`);
  const alerts = [0, 1, 2].map((i) => SensorAlert.parse(JSON.parse(alertRecord("r", i).value)));
  const failedRecord = (a: SensorAlert) =>
    notifyDlqRecord({
      alert: a,
      notifier: "hook",
      plugin: "webhook",
      notificationId: `${a.alert_id}.firing`,
      deliveryId: `${a.alert_id}.firing`,
      attempts: [],
      error: "Receiver answered 500",
    }, { alerts: n.alerts, dlq: n.dlq });
  // r-0 was dead-lettered twice (a replay that failed): one notification all the same.
  await produce(n.dlq, [...alerts, alerts[0]!].map(failedRecord));
  const permissions = (JSON.parse(await Deno.readTextFile("deno.json")).tasks["dlq:replay"] as string)
    .split(/\s+/).filter((a) => a.startsWith("--allow-"));
  const replay = async () => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", ...permissions, "src/notifiers/replay.ts", "--rules", dir],
      env: { ...topicEnv(n), NO_COLOR: "1", LOG_LEVEL: "warn" },
    }).output();
    return { code: out.code, stdout: new TextDecoder().decode(out.stdout) };
  };
  try {
    const first = await replay();
    assert.equal(first.code, 0, first.stdout);
    assert.match(first.stdout, /delivered=3 dead_lettered_again=0/);
    const second = await replay();
    assert.equal(second.code, 0, second.stdout);
    assert.match(second.stdout, /^0 notification\(s\) to re-send/);
    assert.deepEqual(receiver.received.flatMap(alertIdsOf).sort(), ["r-0", "r-1", "r-2"]);
  } finally {
    await receiver.down();
  }
});

/** Sends `messages` to one partition of `topic`. */
async function produceTo(topic: string, partition: number, messages: { key: string; value: string }[]) {
  const producer = kafka().producer();
  await producer.connect();
  try {
    await producer.send({ topic, acks: -1, messages: messages.map((m) => ({ ...m, partition })) });
  } finally {
    await producer.disconnect();
  }
}

Deno.test("with on_full pause, a receiver whose queue is full pauses only the partition that feeds it, and resumes it once drained", async () => {
  const n = uniqueNames("notify-pause");
  await createTopics([n.events, n.alerts, n.dlq, n.aggregates], 2);
  const slow = await Receiver.start("hang");
  const healthy = await Receiver.start(200);
  const dir = await notifiersDir(`notifiers:
  - { name: slow, plugin: webhook, options: { url: "${slow.url}/hook", timeout_ms: 600000, allow_private_targets: true } }
  - { name: healthy, plugin: webhook, options: { url: "${healthy.url}/hook", allow_private_targets: true } }
routes:
  - { match: { rule_id: slow-rule }, receivers: [slow] }
  - { match: { rule_id: healthy-rule }, receivers: [healthy] }
delivery: { timeout: 10m, give_up_after: 20m, max_in_flight: 1, max_queued: 4, on_full: pause }
`);
  const service = startService(serviceEnv(n, dir, `${healthy.url}/unused`), ["--role", "notifier"]);
  try {
    await service.waitForLine(/Joined consumer group/, 60_000);
    await produceTo(
      n.alerts,
      0,
      Array.from({ length: 6 }, (_, i) => alertRecord("p", i, { rule_id: "slow-rule" })),
    );
    await service.waitForLine(
      /A receiver's queue is full: pausing the partition that feeds it.*"partition":0/,
      30_000,
    );
    await produceTo(
      n.alerts,
      0,
      Array.from({ length: 4 }, (_, i) => alertRecord("p", 6 + i, { rule_id: "slow-rule" })),
    );
    await produceTo(
      n.alerts,
      1,
      Array.from({ length: 10 }, (_, i) => alertRecord("q", i, { rule_id: "healthy-rule" })),
    );
    await waitFor("the healthy receiver's alerts", () => healthy.received.length === 10, 60_000);
    assert.equal(slow.received.length, 1, "the slow receiver still holds its first alert");

    slow.answer = 200;
    slow.release();
    await service.waitForLine(/Resumed the partition.*"partition":0/, 60_000);
    await waitFor("the slow receiver's alerts", () => slow.received.length === 10, 60_000);
    await waitFor(
      "every offset committed",
      async () => await groupLag(n.notifierGroup, n.alerts) === 0,
      30_000,
    );
    assert.deepEqual(
      slow.received.flatMap(alertIdsOf).sort(),
      Array.from({ length: 10 }, (_, i) => `p-${i}`).sort(),
    );
  } finally {
    const status = await service.stop("SIGTERM");
    await slow.down();
    await healthy.down();
    assert.equal(status.code, 0, service.stderr().slice(-2000));
  }
});
