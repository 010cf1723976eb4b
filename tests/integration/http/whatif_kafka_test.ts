/**
 * `POST /api/whatif` of a service on the real broker with two engine workers: the events are judged in
 * the workers' threads, each owning some of the partitions, so the what-if reads the events topic
 * itself (the last hour by record time, every partition) instead of the main thread's memory.
 */
import assert from "node:assert/strict";
import { Partitioners } from "kafkajs";
import type { SensorAlert, SensorEventInput } from "../../../src/contract/schemas.ts";
import { createTopics, kafka, topicEnv, uniqueNames, waitFor, withAdmin } from "../../helpers/kafka.ts";
import { httpUrl, startService } from "../../helpers/service.ts";

const TOKEN = "tok-whatif-kafka-5c1e8a";

const RULES = `rules:
  - id: temperature-out-of-range
    sensor_type: temperature
    threshold: { min: 10, max: 35 }
    priority: high
`;

/** The live rule's condition under another id. */
const SAME_AS_LIVE = `id: what-if-temperature
sensor_type: temperature
threshold: { min: 10, max: 35 }
priority: high
`;

interface WhatIf {
  history: { source: string; events: number; capped: boolean; window_seconds: number };
  report: { episodes: { rule_id: string; group: string; start: string; end: string | null }[] };
}

/** Three events in range, then two out of it, one a second from `t0`. */
function sensorRecords(sensor: string, t0: number, recordTime: number) {
  return [20, 21, 22, 40, 41].map((value, i) => {
    const e: SensorEventInput = {
      event_id: `${sensor}-${i}`,
      sensor_id: sensor,
      sensor_type: "temperature",
      value,
      unit: "°C",
      timestamp: new Date(t0 + i * 1000).toISOString(),
    };
    return { key: `temperature:${sensor}`, value: JSON.stringify(e), timestamp: String(recordTime) };
  });
}

async function send(
  topic: string,
  partition: number,
  messages: { key: string; value: string; timestamp: string }[],
): Promise<void> {
  const producer = kafka().producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  try {
    await producer.send({ topic, acks: -1, messages: messages.map((m) => ({ ...m, partition })) });
  } finally {
    await producer.disconnect();
  }
}

Deno.test("POST /api/whatif of a Kafka service with two engine workers runs the rule over every partition's last hour of the events topic", async (t) => {
  const n = uniqueNames("whatif-kafka");
  await createTopics([n.events, n.alerts, n.dlq, n.aggregates], 2);
  await Deno.mkdir("tests/artifacts", { recursive: true });
  const rulesDir = await Deno.makeTempDir({ dir: "tests/artifacts", prefix: "rules-" });
  await Deno.writeTextFile(`${rulesDir}/rules.yaml`, RULES);
  const service = startService({
    ...topicEnv(n),
    SENSOR_PARTITIONS: "2",
    RULES_DIR: rulesDir,
    API_TOKEN: TOKEN,
    WORKERS: "2",
  });
  try {
    const base = await httpUrl(service);
    const post = async (body: unknown) => {
      const res = await fetch(`${base}/api/whatif`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${TOKEN}` },
        body: JSON.stringify(body),
      });
      return { status: res.status, body: await res.json() };
    };
    // Sent once both workers own their partition: a partition that moves later shows its open
    // alerts only at its next record, and these are all there is.
    await waitFor("both engine workers in the group", async () => {
      const res = await fetch(`${base}/readyz`);
      await res.body?.cancel();
      return res.status === 200;
    }, 90_000);
    const now = Date.now();
    // Two hours old by record time (and event time): outside the default window, inside a 3h one.
    await send(n.events, 0, sensorRecords("temp-old", now - 7_200_000, now - 7_200_000));
    // One sensor per partition, so each engine worker judges one of them.
    await send(n.events, 0, sensorRecords("temp-a", now - 600_000, now));
    await send(n.events, 1, sensorRecords("temp-b", now - 600_000, now));
    let active: SensorAlert[] = [];
    const live = await waitFor("the three sensors alerting", async () => {
      const res = await fetch(`${base}/api/alerts`);
      if (!res.ok) {
        await res.body?.cancel();
        return false;
      }
      active = ((await res.json()).active ?? []) as SensorAlert[];
      return active.length === 3 && active;
    }, 90_000).catch((err) => {
      throw new Error(`${err.message}: ${JSON.stringify(active)}\n${service.stderr().slice(-4000)}`);
    });
    const liveEpisodes = (ids: string[]) =>
      live.filter((a) => ids.includes(a.sensor_id))
        .map((a) => `what-if-temperature ${a.sensor_id} ${a.fired_at} null`).sort();

    await t.step("the last hour of every partition: both workers' sensors, not the older one", async () => {
      const { status, body } = await post({ rule: SAME_AS_LIVE });
      assert.equal(status, 200, JSON.stringify(body));
      const r = body as WhatIf;
      assert.equal(r.history.events, 10);
      assert.equal(r.history.source, "topic");
      assert.equal(r.history.capped, false);
      assert.equal(r.history.window_seconds, 3600);
      assert.deepEqual(
        r.report.episodes.map((e) => `${e.rule_id} ${e.group} ${e.start} ${e.end}`).sort(),
        liveEpisodes(["temp-a", "temp-b"]),
      );
    });

    await t.step("a longer window reaches the older records too", async () => {
      const { status, body } = await post({ rule: SAME_AS_LIVE, window: "3h" });
      assert.equal(status, 200, JSON.stringify(body));
      const r = body as WhatIf;
      assert.equal(r.history.events, 15);
      assert.equal(r.history.window_seconds, 10_800);
      assert.deepEqual(
        r.report.episodes.map((e) => `${e.rule_id} ${e.group} ${e.start} ${e.end}`).sort(),
        liveEpisodes(["temp-a", "temp-b", "temp-old"]),
      );
    });

    await t.step("a window that is not a duration, or beyond the bound, is refused", async () => {
      const bad = await post({ rule: SAME_AS_LIVE, window: "soon" });
      assert.equal(bad.status, 400);
      assert.match(bad.body.error, /"window" must be a duration like "1h", got "soon"/);
      const long = await post({ rule: SAME_AS_LIVE, window: "30d" });
      assert.equal(long.status, 400);
      assert.match(long.body.error, /"window" must be at most "24h", got "30d"/);
    });

    await t.step("the reading groups are gone afterwards", async () => {
      const groups = await withAdmin(async (admin) =>
        (await admin.listGroups()).groups.map((g) => g.groupId)
      );
      assert.deepEqual(groups.filter((g) => /^whatif-[0-9a-f-]{36}$/.test(g)), []);
    });
  } finally {
    await service.stop();
    await Deno.remove(rulesDir, { recursive: true });
  }
});
