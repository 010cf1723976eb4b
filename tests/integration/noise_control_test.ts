/**
 * Noise control against the real broker, with the real service and a real webhook receiver:
 * inhibition across a rebalance and a restart, flap detection, escalation with and without an Ack,
 * and the storm guard under 10,000 alerts of one rule.
 */
import assert from "node:assert/strict";
import { SensorAlert, type SensorEventInput } from "../../src/contract/schemas.ts";
import { print } from "../../src/log.ts";
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
import { httpUrl, type RunningService, startService } from "../helpers/service.ts";

const T0 = Date.UTC(2026, 10, 25, 21, 0, 0);
const S = 1000;

/** A rules dir with `rules` and a notifiers.yaml sending to `receiver` (critical alerts to /pager). */
async function rulesDir(rules: string, receiver: Receiver): Promise<string> {
  await Deno.mkdir("tests/artifacts", { recursive: true });
  const dir = await Deno.makeTempDir({ dir: "tests/artifacts", prefix: "noise-it-" });
  await Deno.writeTextFile(`${dir}/noise.yaml`, rules);
  const hook = (path: string) =>
    `{ url: "${receiver.url}${path}", timeout_ms: 2000, allow_private_targets: true }`;
  await Deno.writeTextFile(
    `${dir}/notifiers.yaml`,
    `notifiers:
  - { name: hook, plugin: webhook, options: ${hook("/hook")} }
  - { name: pager, plugin: webhook, options: ${hook("/pager")} }
routes:
  - match: { priority: critical }
    receivers: [pager]
default_receivers: [hook]
`,
  );
  return dir;
}

function event(
  sensor: string,
  type: SensorEventInput["sensor_type"],
  value: number,
  at: number,
  location: string,
) {
  const e: SensorEventInput = {
    event_id: `${sensor}-${at}-${value}`,
    sensor_id: sensor,
    sensor_type: type,
    value,
    unit: "",
    timestamp: new Date(T0 + at).toISOString(),
    location,
    metadata: {},
  };
  return { key: `${type}:${sensor}`, value: JSON.stringify(e) };
}

/** Topics named for `test` (3 partitions), a receiver answering 200, and a service's env running `rules`. */
async function setup(test: string, rules: string) {
  const n = uniqueNames(test);
  await createTopics([n.events, n.alerts, n.dlq, n.aggregates], 3);
  const receiver = await Receiver.start(200);
  const env = { ...topicEnv(n), SENSOR_PARTITIONS: "3", RULES_DIR: await rulesDir(rules, receiver) };
  return { n, receiver, env };
}

const FLAPPING = `rules:
  - id: sensor-hot
    sensor_type: temperature
    threshold: { max: 40 }
    priority: high
    flapping: { window: 1m, max_transitions: 4 }
`;

/** An alert as the flapping tests compare it: state, flapping, seconds since T0. */
const episode = (a: SensorAlert) => [a.state, a.flapping ?? false, (Date.parse(a.timestamp) - T0) / S];

const notified = (r: Received): SensorAlert => JSON.parse(r.body).alert;
const alertsOn = async (topic: string, atLeast: number) =>
  (await readTopic(topic, (v) => v.length >= atLeast, 2_000)).map((r) =>
    SensorAlert.parse(JSON.parse(r.value))
  );

/** Every event is evaluated, the alerts are in, and the notifier stage has handled (committed) every one. */
async function settled(n: ReturnType<typeof uniqueNames>, alerts: number): Promise<SensorAlert[]> {
  let onTopic: SensorAlert[] = [];
  await waitFor(`${alerts} alerts raised and handled by the notifier stage`, async () => {
    onTopic = await alertsOn(n.alerts, alerts);
    return onTopic.length >= alerts && (await groupLag(n.group, n.events)) === 0 &&
      (await groupLag(n.notifierGroup, n.alerts)) === 0;
  }, 120_000);
  return onTopic;
}

async function stopAll(services: RunningService[], receiver: Receiver): Promise<void> {
  const codes = [];
  for (const s of services) codes.push((await s.stop("SIGTERM")).code);
  await receiver.down();
  assert.deepEqual(codes, codes.map(() => 0), services.map((s) => s.stderr().slice(-1500)).join("\n---\n"));
}

Deno.test("an inhibition holds across a rebalance and a restart, and lifts when its source resolves", async () => {
  const { n, receiver, env } = await setup(
    "noise-inhibit",
    `rules:
  - id: gateway-down
    sensor_type: motion
    sensor_id: "gw-*"
    threshold: { max: 0.5 }
    priority: high
  - id: sensor-hot
    sensor_type: temperature
    threshold: { max: 40 }
    priority: high
inhibit:
  - source: { rule_id: gateway-down }
    target: { rule_id: sensor-hot }
    equal: [location]
`,
  );
  const a = startService(env);
  let b: RunningService | null = null;
  const running = [a];
  const hot = (prefix: string, count: number, location: string, at: number) =>
    Array.from({ length: count }, (_, i) => event(`${prefix}-${i}`, "temperature", 50, at, location));
  const notifiedSensors = () => receiver.received.map((r) => notified(r).sensor_id);
  try {
    await a.waitForLine(/Consuming from Kafka/, 60_000);
    await produce(n.events, [event("gw-1", "motion", 1, 0, "Hall 7")]);
    await waitFor("the gateway alert notified", () => notifiedSensors().includes("gw-1"), 60_000);

    // Hall 7's sensors (several partitions) are inhibited; Hall 8's is not.
    await produce(n.events, [...hot("t7a", 6, "Hall 7", S), ...hot("t8a", 1, "Hall 8", S)]);
    await settled(n, 8);
    assert.deepEqual(notifiedSensors().sort(), ["gw-1", "t8a-0"]);

    // A second instance joins (a rebalance), then the first leaves (another, and a restart of its share).
    b = startService(env);
    running.push(b);
    await b.waitForLine(/Consuming from Kafka/, 60_000);
    await a.stop("SIGTERM");
    running.splice(running.indexOf(a), 1);
    await produce(n.events, [...hot("t7b", 6, "Hall 7", 2 * S), ...hot("t8b", 1, "Hall 8", 2 * S)]);
    await settled(n, 15);
    assert.deepEqual(notifiedSensors().sort(), ["gw-1", "t8a-0", "t8b-0"]);

    // The gateway is back: Hall 7's new alerts are notified again (the inhibition was what held them).
    await produce(n.events, [event("gw-1", "motion", 0, 3 * S, "Hall 7")]);
    await waitFor(
      "the gateway's resolved notice",
      () => receiver.received.some((r) => notified(r).state === "resolved"),
      60_000,
    );
    await produce(n.events, hot("t7c", 1, "Hall 7", 4 * S));
    await waitFor("Hall 7 notified again", () => notifiedSensors().includes("t7c-0"), 60_000);
    const inhibited = notifiedSensors().filter((s) => s.startsWith("t7a") || s.startsWith("t7b"));
    assert.deepEqual(inhibited, []);
  } finally {
    await stopAll(running, receiver);
  }
});

Deno.test("a flapping sensor yields its first changes, one flapping notice and one notice once stable", async () => {
  const { n, receiver, env } = await setup("noise-flap", FLAPPING);
  const service = startService(env);
  try {
    await service.waitForLine(/Consuming from Kafka/, 60_000);
    // Two minutes of changes every 10 s, then three quiet minutes (event time).
    const events = [];
    for (let t = 0; t < 120 * S; t += 10 * S) {
      events.push(event("f-1", "temperature", (t / (10 * S)) % 2 === 0 ? 50 : 20, t, "Hall 7"));
    }
    for (let t = 120 * S; t <= 300 * S; t += 10 * S) {
      events.push(event("f-1", "temperature", 20, t, "Hall 7"));
    }
    await produce(n.events, events);
    const onTopic = await settled(n, 6);
    const expected = [
      ["firing", false, 0],
      ["resolved", false, 10],
      ["firing", false, 20],
      ["resolved", false, 30],
      ["firing", true, 40],
      // The last change was at 110 s: stable one window (60 s) later.
      ["resolved", false, 170],
    ];
    assert.deepEqual(onTopic.map(episode), expected);
    assert.equal(onTopic[5]!.alert_id, onTopic[4]!.alert_id, "the stable notice resolves the flapping one");
    await waitFor("six notifications", () => receiver.received.length >= 6, 30_000);
    assert.deepEqual(receiver.received.map((r) => episode(notified(r))).sort(), [...expected].sort());
    assert.equal(new Set(receiver.received.map((r) => r.headers.get("webhook-id"))).size, 6);
  } finally {
    await stopAll([service], receiver);
  }
});

Deno.test("a flapping sensor stays flapping across a restart: the state changelog keeps its transitions", async () => {
  const { n, receiver, env } = await setup("noise-flap-restart", FLAPPING);
  let service = startService(env);
  const value = (t: number) => (t / (10 * S)) % 2 === 0 ? 50 : 20;
  try {
    await service.waitForLine(/Consuming from Kafka/, 60_000);
    await produce(
      n.events,
      [0, 10, 20, 30, 40].map((t) => event("f-2", "temperature", value(t * S), t * S, "Hall 7")),
    );
    await settled(n, 5);
    await service.stop("SIGTERM");
    service = startService(env);
    await service.waitForLine(/Consuming from Kafka/, 60_000);
    // Still flapping after the restart: these changes are held back, then one stable notice at 50 s + 1 m.
    const after = [50, 60, 70, 80, 90, 100, 110, 120, 130].map((t) =>
      event("f-2", "temperature", t <= 50 ? value(t * S) : 20, t * S, "Hall 7")
    );
    await produce(n.events, after);
    const onTopic = await settled(n, 6);
    assert.deepEqual(onTopic.map(episode), [
      ["firing", false, 0],
      ["resolved", false, 10],
      ["firing", false, 20],
      ["resolved", false, 30],
      ["firing", true, 40],
      ["resolved", false, 110],
    ]);
  } finally {
    await stopAll([service], receiver);
  }
});

Deno.test("an unacknowledged alert escalates to critical (and the pager), an acknowledged one does not", async () => {
  const { n, receiver, env } = await setup(
    "noise-escalate",
    `rules:
  - id: sensor-hot
    sensor_type: temperature
    threshold: { max: 40 }
    priority: high
    escalate: [{ after: 1m, priority: critical }]
`,
  );
  const service = startService(env);
  try {
    const base = await httpUrl(service, 60_000);
    await service.waitForLine(/Consuming from Kafka/, 60_000);
    await produce(n.events, [
      event("u-1", "temperature", 50, 0, "Hall 7"),
      event("a-1", "temperature", 50, 0, "Hall 7"),
    ]);
    const firing = await waitFor("both alerts notified", () => {
      const alerts = receiver.received.map(notified);
      return alerts.length >= 2 ? alerts : false;
    }, 60_000);
    const acked = firing.find((a) => a.sensor_id === "a-1")!;
    const res = await fetch(`${base}/api/alerts/${acked.alert_id}/ack`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ by: "noise-test" }),
    });
    assert.equal(res.status, 200, await res.clone().text());
    await res.body?.cancel();
    // Both stay hot for two minutes of event time.
    const later = [];
    for (let t = 10 * S; t <= 120 * S; t += 10 * S) {
      later.push(event("u-1", "temperature", 50, t, "Hall 7"), event("a-1", "temperature", 50, t, "Hall 7"));
    }
    await produce(n.events, later);
    // Two firing alerts, the ack update, one escalation.
    const onTopic = await settled(n, 4);
    const escalations = onTopic.filter((a) => (a.escalation ?? 0) > 0);
    assert.deepEqual(escalations.map((a) => [a.sensor_id, a.priority, (Date.parse(a.timestamp) - T0) / S]), [
      ["u-1", "critical", 60],
    ]);
    // The API shows each open alert as it is now: escalated, or acknowledged at its first priority.
    const { active } = await (await fetch(`${base}/api/alerts`)).json() as { active: SensorAlert[] };
    assert.deepEqual(active.map((a) => [a.sensor_id, a.priority, a.escalation, a.acknowledged]).sort(), [
      ["a-1", "high", 0, true],
      ["u-1", "critical", 1, false],
    ]);
    await waitFor("the escalation paged", () => receiver.received.some((r) => r.path === "/pager"), 30_000);
    const paged = receiver.received.filter((r) => r.path === "/pager").map(notified);
    assert.deepEqual(paged.map((a) => [a.sensor_id, a.escalation]), [["u-1", 1]]);
    assert.deepEqual(
      receiver.received.filter((r) => r.path === "/hook").map((r) => notified(r).sensor_id).sort(),
      [
        "a-1",
        "u-1",
      ],
    );
  } finally {
    await stopAll([service], receiver);
  }
});

Deno.test("a rule raising 10,000 alerts a minute is notified at most its cap per interval plus one summary each", async () => {
  const { n, receiver, env } = await setup(
    "noise-storm",
    `rules:
  - id: storm
    sensor_type: temperature
    condition: { ">": [{ var: value }, 0] }
    priority: high
    max_notifications: { count: 20, per: 5s }
`,
  );
  const service = startService(env, [
    "--role",
    "notifier",
  ]);
  const total = 10_000;
  try {
    await service.waitForLine(/Joined consumer group/, 60_000);
    const started = Date.now();
    // The alerts of one minute of event time, as the engine writes them: 100 sensors, 100 episodes each.
    await produce(
      n.alerts,
      Array.from({ length: total }, (_, i) => {
        const a = {
          alert_id: `storm-${i}`,
          sensor_id: `s-${i % 100}`,
          sensor_type: "temperature",
          priority: "high",
          message: `s-${i % 100} is hot`,
          value: 50,
          threshold: null,
          timestamp: new Date(T0 + Math.floor(i * 6)).toISOString(),
          acknowledged: false,
          rule_id: "storm",
          state: "firing",
          labels: {},
        };
        return { key: `temperature:${a.sensor_id}`, value: JSON.stringify(a) };
      }),
    );
    // Handled, and every held alert summed up (the offsets of held alerts wait for their summary).
    await waitFor("every alert notified or summed up", async () => {
      const alerts = receiver.received.map(notified);
      const held = alerts.reduce((sum, a) => sum + (a.storm?.held ?? 0), 0);
      return alerts.length - alerts.filter((a) => a.storm).length + held >= total &&
        (await groupLag(n.notifierGroup, n.alerts)) === 0;
    }, 180_000);
    const elapsed = Date.now() - started;
    const alerts = receiver.received.map(notified);
    const summaries = alerts.filter((a) => a.storm !== undefined);
    const plain = alerts.length - summaries.length;
    const held = summaries.reduce((sum, a) => sum + a.storm!.held, 0);
    assert.equal(plain + held, total, "every alert is either notified or counted in a summary, once");
    // Each 5 s interval sends at most 20 and one summary; intervals are at most the run's length / 5 s + 1.
    const intervals = Math.ceil(elapsed / (5 * S)) + 1;
    assert.ok(summaries.length <= intervals, `${summaries.length} summaries in ${elapsed} ms`);
    assert.ok(plain <= 20 * intervals, `${plain} plain notifications in ${elapsed} ms`);
    assert.ok(summaries.length >= 1);
    for (const s of summaries) {
      assert.match(s.message, /and [\d,]+ more like it/);
      assert.equal(Object.values(s.storm!.by_sensor).reduce((x, y) => x + y, 0), s.storm!.held);
    }
    print(
      `storm: ${total} alerts → ${plain} notifications and ${summaries.length} summaries in ${elapsed} ms`,
    );
  } finally {
    await stopAll([service], receiver);
  }
});
