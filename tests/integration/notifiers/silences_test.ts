/**
 * Silences against the real broker, with two service processes sharing the topics: instance 1 runs
 * the engine and takes the silences over HTTP, instance 2 runs the notifier stage and obeys them. A
 * silence written on one holds notifications on the other, ends with the held alert notified if it
 * still fires, and outlives a restart of both.
 */
import assert from "node:assert/strict";
import type { SensorEventInput } from "../../../src/contract/schemas.ts";
import { ConfigResourceTypes } from "kafkajs";
import {
  createTopics,
  groupLag,
  produce,
  topicEnv,
  uniqueNames,
  waitFor,
  withAdmin,
} from "../../helpers/kafka.ts";
import { scrape } from "../../helpers/metrics.ts";
import { Receiver } from "../../helpers/receiver.ts";
import { httpUrl, type RunningService, startService } from "../../helpers/service.ts";

const RULES = `rules:
  - id: temperature-out-of-range
    sensor_type: temperature
    threshold: { min: 10, max: 35 }
    priority: high
`;

const T0 = Date.UTC(2026, 10, 25, 21, 0, 0);
let seq = 0;
function ev(sensorId: string, value: number, atMs = 0): { key: string; value: string } {
  const e: SensorEventInput = {
    event_id: `silence-${++seq}`,
    sensor_id: sensorId,
    sensor_type: "temperature",
    value,
    unit: "°C",
    timestamp: new Date(T0 + atMs).toISOString(),
  };
  return { key: `temperature:${sensorId}`, value: JSON.stringify(e) };
}

async function rulesDir(): Promise<string> {
  await Deno.mkdir("tests/artifacts", { recursive: true });
  const dir = await Deno.makeTempDir({ dir: "tests/artifacts", prefix: "silences-it-" });
  await Deno.writeTextFile(`${dir}/rules.yaml`, RULES);
  await Deno.writeTextFile(
    `${dir}/notifiers.yaml`,
    `notifiers:
  - name: hook
    plugin: webhook
    options: { url: "\${NOTIFY_WEBHOOK_URL}", timeout_ms: 2000, allow_private_targets: true }
default_receivers: [hook]
`,
  );
  return dir;
}

/** Notified (sensor, state) pairs, in order. */
const notified = (r: Receiver) =>
  r.received.map((x) => {
    const a = JSON.parse(x.body).alert as { sensor_id: string; state: string };
    return `${a.sensor_id} ${a.state}`;
  });

const TOKEN = "tok-silences-3b9e71c2";
const WRITE = { "content-type": "application/json", authorization: `Bearer ${TOKEN}` };
const post = (url: string, body: unknown, headers: Record<string, string> = WRITE) =>
  fetch(url, { method: "POST", headers, body: JSON.stringify(body) });

/** Topics named for `test` (2 partitions), a receiver answering 200, and the env of instances sharing them. */
async function setup(test: string) {
  const n = uniqueNames(test);
  await createTopics([n.events, n.alerts, n.dlq, n.aggregates], 2);
  const dir = await rulesDir();
  const receiver = await Receiver.start(200);
  const env = {
    ...topicEnv(n),
    SENSOR_PARTITIONS: "2",
    RULES_DIR: dir,
    NOTIFY_WEBHOOK_URL: `${receiver.url}/hook`,
    SILENCES_TOPIC: `${n.events}.silences`,
    API_TOKEN: TOKEN,
  };
  return { n, receiver, env };
}

/** The instance's HTTP base once it answers ready. */
async function ready(s: RunningService): Promise<string> {
  const base = await httpUrl(s);
  await waitFor(`${base}/readyz`, async () => (await fetch(`${base}/readyz`)).status === 200, 90_000);
  return base;
}

/** Waits (as `what`) until the instance at `base` lists the silence `id`. */
const knowsSilence = (what: string, base: string, id: string) =>
  waitFor(what, async () => {
    const { silences } = await (await fetch(`${base}/api/silences`)).json();
    return silences.some((s: { id: string }) => s.id === id);
  });

const engineSettled = (n: ReturnType<typeof uniqueNames>) =>
  waitFor("the engine to commit", async () => (await groupLag(n.group, n.events)) === 0, 60_000);
const notifierSettled = (n: ReturnType<typeof uniqueNames>) =>
  waitFor("the notifier to commit", async () => (await groupLag(n.notifierGroup, n.alerts)) === 0, 60_000);

Deno.test("a silence created on one instance holds notifications on another, ends with the held alert notified, and outlives a restart of both", async () => {
  const { n, receiver, env } = await setup("silences");
  const silencesTopic = env.SILENCES_TOPIC;
  const start = async (): Promise<
    { engine: RunningService; notifier: RunningService; e: string; nf: string }
  > => {
    const engine = startService(env, ["--role", "engine"]);
    const notifier = startService(env, ["--role", "notifier"]);
    const [e, nf] = await Promise.all([ready(engine), ready(notifier)]);
    return { engine, notifier, e, nf };
  };
  const settled = async () => {
    await engineSettled(n);
    await notifierSettled(n);
  };
  let running = await start();
  try {
    const policy = await withAdmin(async (admin) => {
      const { resources } = await admin.describeConfigs({
        includeSynonyms: false,
        resources: [{
          type: ConfigResourceTypes.TOPIC,
          name: silencesTopic,
          configNames: ["cleanup.policy"],
        }],
      });
      return resources[0]?.configEntries[0]?.configValue;
    });
    assert.equal(policy, "compact", "the service created the silences topic compacted");
    const ends = new Date(Date.now() + 3600_000).toISOString();
    const body = {
      matchers: [
        { name: "sensor_id", value: "quiet-*" },
        { name: "rule_id", value: "temperature-out-of-range" },
      ],
      ends_at: ends,
      created_by: "test",
      comment: "maintenance of the quiet sensors",
    };
    const anonymous = await post(`${running.e}/api/silences`, body, { "content-type": "application/json" });
    assert.equal(anonymous.status, 401, "a write needs the token");
    const malformed = await post(`${running.e}/api/silences`, { ...body, matchers: [{ name: "sensor_id" }] });
    assert.equal(malformed.status, 400);
    assert.match((await malformed.json()).error, /Field "matchers\.0\.value"/);
    const res = await post(`${running.e}/api/silences`, body);
    assert.equal(res.status, 201, await res.clone().text());
    const { silence } = await res.json();
    assert.equal(silence.status, "active");
    assert.equal(silence.ends_at, ends);
    await knowsSilence("instance 2 to know the silence", running.nf, silence.id);

    // The loud sensor shows the notifier works; the quiet one is silenced.
    await produce(n.events, [ev("quiet-1", 50), ev("loud-1", 50)]);
    await settled();
    await waitFor("the loud alert", () => notified(receiver).includes("loud-1 firing"));
    assert.deepEqual(notified(receiver), ["loud-1 firing"]);
    const { active } = await (await fetch(`${running.e}/api/alerts`)).json();
    const quiet = active.find((a: { sensor_id: string }) => a.sensor_id === "quiet-1");
    assert.ok(quiet, "the silenced alert is still tracked and shown");
    assert.deepEqual(quiet.silenced_by, [silence.id]);
    assert.deepEqual(active.find((a: { sensor_id: string }) => a.sensor_id === "loud-1").silenced_by, []);
    const silencedOnly = await (await fetch(`${running.e}/api/alerts?state=silenced`)).json();
    assert.deepEqual(silencedOnly.active.map((a: { sensor_id: string }) => a.sensor_id), ["quiet-1"]);
    const m = await scrape(running.nf);
    assert.equal(m.value("sensor_notifications_suppressed_total"), 1);
    assert.equal(m.value("sensor_silences_active"), 1);

    // A second silence that ends while one of its alerts still fires and the other has resolved.
    const second = await post(`${running.e}/api/silences`, {
      matchers: [{ name: "sensor_id", value: "ending-[12]", is_regex: true }],
      ends_at: ends,
      created_by: "test",
      comment: "ends early",
    });
    assert.equal(second.status, 201);
    const ending = (await second.json()).silence;
    await knowsSilence("instance 2 to know the second silence", running.nf, ending.id);
    await produce(n.events, [ev("ending-1", 50), ev("ending-2", 50), ev("ending-2", 22, 1000)]);
    await settled();
    assert.equal((await scrape(running.nf)).value("sensor_notifications_suppressed_total"), 4);
    assert.deepEqual(notified(receiver), ["loud-1 firing"]);
    const expired = await fetch(`${running.e}/api/silences/${ending.id}`, {
      method: "DELETE",
      headers: WRITE,
    });
    assert.equal(expired.status, 200);
    assert.equal((await expired.json()).silence.status, "expired");
    await waitFor("the held alert to be notified", () => notified(receiver).includes("ending-1 firing"));
    // Nothing else was owed: ending-2 resolved while silenced, quiet-1 is still silenced.
    await waitFor(
      "the silences gauge to drop",
      async () => (await scrape(running.nf)).value("sensor_silences_active") === 1,
    );
    assert.deepEqual(notified(receiver), ["loud-1 firing", "ending-1 firing"]);

    // Both instances restart: the silence is read back from its topic before anything is notified.
    await Promise.all([running.engine.stop(), running.notifier.stop()]);
    running = await start();
    const { silences } = await (await fetch(`${running.nf}/api/silences`)).json();
    assert.deepEqual(
      silences.map((s: { id: string; status: string }) => `${s.id} ${s.status}`).sort(),
      [`${silence.id} active`, `${ending.id} expired`].sort(),
    );
    await produce(n.events, [ev("quiet-2", 50), ev("loud-2", 50)]);
    await settled();
    await waitFor("the second loud alert", () => notified(receiver).includes("loud-2 firing"));
    assert.deepEqual(notified(receiver), ["loud-1 firing", "ending-1 firing", "loud-2 firing"]);
    assert.equal((await scrape(running.nf)).value("sensor_notifications_suppressed_total"), 1);
  } finally {
    const statuses = await Promise.all([running.engine.stop(), running.notifier.stop()]);
    await receiver.down();
    for (const s of statuses) assert.equal(s.code, 0);
  }
});

Deno.test("alerts a silence holds outlive a restart of the notifier: when it ends, the one still firing is notified once, by the instance owning its partition, and the one that resolved meanwhile is not", async () => {
  const { n, receiver, env } = await setup("silences-held");
  const engine = startService(env, ["--role", "engine"]);
  const notifiers: RunningService[] = [startService(env, ["--role", "notifier"])];
  try {
    const [e, nf] = await Promise.all([ready(engine), ready(notifiers[0]!)]);
    const res = await post(`${e}/api/silences`, {
      matchers: [{ name: "sensor_id", value: "held-*" }],
      ends_at: new Date(Date.now() + 3600_000).toISOString(),
      created_by: "test",
      comment: "held across a restart",
    });
    assert.equal(res.status, 201, await res.clone().text());
    const { silence } = await res.json();
    await knowsSilence("the notifier to know the silence", nf, silence.id);
    await produce(n.events, [ev("held-1", 50), ev("held-2", 50)]);
    await engineSettled(n);
    await notifierSettled(n);
    assert.equal((await scrape(nf)).value("sensor_notifications_suppressed_total"), 2);

    // The notifier goes away while the silence holds both; one of them resolves meanwhile.
    assert.equal((await notifiers[0]!.stop()).code, 0);
    notifiers.length = 0;
    await produce(n.events, [ev("held-2", 22, 1000)]);
    await engineSettled(n);

    // Two notifiers now share the alerts' partitions.
    notifiers.push(startService(env, ["--role", "notifier"]), startService(env, ["--role", "notifier"]));
    const bases = await Promise.all(notifiers.map(ready));
    await waitFor("both notifiers to own a partition", () =>
      withAdmin(async (admin) => {
        const { groups } = await admin.describeGroups([n.notifierGroup]);
        return groups[0]?.state === "Stable" && groups[0].members.length === 2;
      }), 60_000);
    await notifierSettled(n);
    assert.deepEqual(notified(receiver), [], "nothing is notified while the silence holds");

    const expired = await fetch(`${e}/api/silences/${silence.id}`, { method: "DELETE", headers: WRITE });
    assert.equal(expired.status, 200);
    await waitFor("the held alert to be notified", () => notified(receiver).includes("held-1 firing"));
    for (const base of bases) {
      await waitFor(
        "each notifier to see the silence end",
        async () => (await scrape(base)).value("sensor_silences_active") === 0,
      );
      // The release is forgotten (a tombstone) once delivered: every instance then holds nothing.
      await waitFor(
        "each notifier to forget the released alert",
        async () => (await scrape(base)).value("sensor_notifications_held") === 0,
      );
    }
    let released = 0;
    for (const base of bases) {
      released += (await scrape(base)).value("sensor_notifications_released_total") ?? NaN;
    }
    assert.equal(released, 1, "one instance released the held alert");
    assert.deepEqual(notified(receiver), ["held-1 firing"]);
  } finally {
    const statuses = await Promise.all([engine, ...notifiers].map((s) => s.stop()));
    await receiver.down();
    for (const s of statuses) assert.equal(s.code, 0);
  }
});
