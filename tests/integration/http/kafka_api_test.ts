/**
 * The HTTP API of a service consuming from the real broker: readiness follows the group join,
 * /metrics counts known traffic per partition, and an acknowledgement goes through the alerts topic.
 */
import assert from "node:assert/strict";
import { Partitioners } from "kafkajs";
import { SensorAlert, type SensorEventInput } from "../../../src/contract/schemas.ts";
import {
  createTopics,
  groupLag,
  kafka,
  readTopic,
  topicEnv,
  uniqueNames,
  waitFor,
} from "../../helpers/kafka.ts";
import { scrape } from "../../helpers/metrics.ts";
import { httpUrl, startService } from "../../helpers/service.ts";

const RULES = `rules:
  - id: temperature-out-of-range
    sensor_type: temperature
    threshold: { min: 10, max: 35 }
    priority: high
  - id: humidity-out-of-range
    sensor_type: humidity
    threshold: { min: 20, max: 80 }
    priority: normal
    repeat_interval: 1m
`;

const T0 = Date.UTC(2026, 10, 25, 21, 0, 0);
let seq = 0;
function ev(sensor_id: string, sensor_type: SensorEventInput["sensor_type"], value: number, atMs: number) {
  const e: SensorEventInput = {
    event_id: `http-${++seq}`,
    sensor_id,
    sensor_type,
    value,
    unit: "u",
    timestamp: new Date(T0 + atMs).toISOString(),
  };
  return { key: `${sensor_type}:${sensor_id}`, value: JSON.stringify(e) };
}

async function send(topic: string, byPartition: { key: string | null; value: string }[][]): Promise<void> {
  const producer = kafka().producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  try {
    for (const [partition, messages] of byPartition.entries()) {
      if (messages.length === 0) continue;
      await producer.send({ topic, acks: -1, messages: messages.map((m) => ({ ...m, partition })) });
    }
  } finally {
    await producer.disconnect();
  }
}

Deno.test("HTTP API of a Kafka-backed service", async (t) => {
  const n = uniqueNames("http");
  await createTopics([n.events, n.alerts, n.dlq, n.aggregates], 3);
  const rulesDir = await Deno.makeTempDir({ dir: "tests/artifacts", prefix: "rules-" }).catch(async () => {
    await Deno.mkdir("tests/artifacts", { recursive: true });
    return Deno.makeTempDir({ dir: "tests/artifacts", prefix: "rules-" });
  });
  await Deno.writeTextFile(`${rulesDir}/rules.yaml`, RULES);

  // Known traffic, partition by partition: 15 records, 4 invalid, 2 duplicates, 9 accepted.
  const hum1 = ev("hum-001", "humidity", 50, 0);
  const co2 = ev("co2-001", "co2", 400, 0);
  const traffic = [
    [
      ev("temp-001", "temperature", 22, 0),
      { key: null, value: "{oops" },
      ev("temp-001", "temperature", 40, 1000),
      {
        key: null,
        value: "not json",
      },
      ev("temp-001", "temperature", 22, 2000),
    ],
    [
      hum1,
      ev("hum-001", "humidity", 90, 1000),
      {
        key: "humidity:hum-002",
        value: JSON.stringify({ ...JSON.parse(ev("hum-002", "humidity", 1, 0).value), value: "hot" }),
      },
      ev("hum-002", "humidity", 85, 1000),
      hum1,
    ],
    [
      co2,
      ev("co2-001", "co2", 500, 1000),
      { ...ev("co2-001", "co2", 600, 2000), key: "humidity:co2-001" },
      co2,
      ev(
        "co2-001",
        "co2",
        600,
        3000,
      ),
    ],
  ];
  await send(n.events, traffic);

  // Two engine workers whatever the machine's cores: the first to join reads the backlog, and a
  // rebalance moves partitions to the second, whose open alerts must show without a new record.
  const service = startService({
    ...topicEnv(n),
    SENSOR_PARTITIONS: "3",
    RULES_DIR: rulesDir,
    WORKERS: "2",
  });
  try {
    const base = await httpUrl(service);

    await t.step("/readyz answers 503 until both consumer groups joined, then 200", async () => {
      const seen: { status: number; joinedLines: number; body: { checks: Record<string, unknown> } }[] = [];
      await waitFor("/readyz to answer 200", async () => {
        const res = await fetch(`${base}/readyz`);
        const body = await res.json();
        seen.push({
          status: res.status,
          joinedLines: service.stderr().split("Joined consumer group").length - 1,
          body,
        });
        return res.status === 200;
      }, 60_000);
      assert.equal(seen[0]!.status, 503, "not ready right after the server started");
      const firstReady = seen.findIndex((s) => s.status === 200);
      assert.ok(seen.slice(firstReady).every((s) => s.status === 200), "readiness does not flap");
      assert.ok(seen[firstReady]!.joinedLines >= 2, "ready only once both groups logged their join");
      assert.deepEqual(seen[firstReady]!.body.checks.kafka, {
        groups: [{ group: n.group, joined: true }, { group: n.notifierGroup, joined: true }],
      });
      assert.equal((await fetch(`${base}/healthz`)).status, 200);
    });

    await t.step("/metrics counts the known traffic by partition, reason and rule", async () => {
      await waitFor(
        "the engine to commit everything",
        async () => (await groupLag(n.group, n.events)) === 0,
        60_000,
      );
      await waitFor(
        "the notifier to commit everything",
        async () => (await groupLag(n.notifierGroup, n.alerts)) === 0,
        60_000,
      );
      const m = await scrape(base);
      for (const [partition, records] of traffic.entries()) {
        assert.equal(
          m.value("sensor_events_consumed_total", { topic: n.events, partition: String(partition) }),
          records.length,
        );
      }
      assert.equal(m.value("sensor_events_invalid_total", { stage: "decode", reason: "invalid_json" }), 2);
      assert.equal(m.value("sensor_events_invalid_total", { stage: "validate", reason: "invalid_field" }), 1);
      assert.equal(m.value("sensor_events_invalid_total", { stage: "validate", reason: "key_mismatch" }), 1);
      assert.equal(m.value("sensor_dlq_records_total", { stage: "decode" }), 2);
      assert.equal(m.value("sensor_dlq_records_total", { stage: "validate" }), 2);
      assert.equal(m.value("sensor_events_duplicate_total"), 2);
      assert.equal(m.value("sensor_events_accepted_total"), 9);
      // One batch per partition at least; the histogram is observed per batch, not per event.
      const [histogram] = m.samples("sensor_batch_evaluation_seconds");
      const batches = Number(histogram?.count);
      assert.ok(batches >= 3 && batches <= 15, `batches observed: ${histogram?.count}`);
      assert.equal(histogram?.buckets?.["+Inf"], histogram?.count);
      const rule = (r: string, state: string) => m.value("sensor_alerts_total", { rule: r, state });
      assert.equal(rule("temperature-out-of-range", "firing"), 1);
      assert.equal(rule("temperature-out-of-range", "resolved"), 1);
      assert.equal(rule("humidity-out-of-range", "firing"), 2);
      assert.equal(
        m.value("sensor_alerts_active", { rule: "humidity-out-of-range", acknowledged: "false" }),
        2,
      );
      assert.equal(m.value("sensor_notifications_total", { notifier: "console", outcome: "delivered" }), 4);
      assert.equal(m.value("sensor_notifier_circuit_state", { notifier: "console" }), 0);
      assert.equal(m.value("sensor_rules_loaded"), 2);
      assert.equal(m.value("sensor_rule_reload_errors_total"), 0);
      assert.ok(m.value("sensor_rules_last_good_reload_timestamp_seconds")! > T0 / 1000);
      assert.equal(m.value("sensor_consumer_joined", { group: n.group }), 1);
    });

    await t.step(
      "/metrics shows the lag of every partition of both groups as the broker has it",
      async () => {
        // The lag is cached briefly: wait until the scrape reflects the commits we waited for.
        const m = await waitFor("zero lag in /metrics", async () => {
          const s = await scrape(base);
          return s.samples("sensor_consumer_lag").length === 6 &&
            s.samples("sensor_consumer_lag").every((x) => x.value === "0") && s;
        });
        for (const partition of ["0", "1", "2"]) {
          assert.equal(m.value("sensor_consumer_lag", { group: n.group, topic: n.events, partition }), 0);
          assert.equal(
            m.value("sensor_consumer_lag", { group: n.notifierGroup, topic: n.alerts, partition }),
            0,
          );
        }
      },
    );

    await t.step("/api/sensors and /api/rules describe what was consumed and loaded", async () => {
      const { sensors } = await (await fetch(`${base}/api/sensors`)).json();
      const byId = new Map(sensors.map((s: { sensor_id: string }) => [s.sensor_id, s]));
      assert.deepEqual([...byId.keys()], ["co2-001", "hum-001", "hum-002", "temp-001"]);
      assert.deepEqual(byId.get("temp-001"), {
        ...byId.get("temp-001") as object,
        count: 3,
        min: 22,
        max: 40,
        last_value: 22,
        recent: [22, 40, 22],
        threshold: { min: 10, max: 35, rule: "temperature-out-of-range" },
        state: "ok",
      });
      assert.equal((byId.get("hum-001") as { state: string }).state, "normal");
      assert.equal((byId.get("co2-001") as { threshold: unknown }).threshold, null);
      const rules = await (await fetch(`${base}/api/rules`)).json();
      assert.equal(rules.loaded, 2);
      assert.equal(rules.ok, true);
      assert.deepEqual(rules.rules.map((r: { id: string; source: string }) => `${r.id} ${r.source}`), [
        `temperature-out-of-range ${rulesDir}/rules.yaml:2`,
        `humidity-out-of-range ${rulesDir}/rules.yaml:6`,
      ]);
    });

    await t.step(
      "an acknowledgement is published to the alerts topic and stops re-notification",
      async () => {
        const { active } = await (await fetch(`${base}/api/alerts?priority=normal&state=firing`)).json();
        const target = active.find((a: SensorAlert) => a.sensor_id === "hum-001") as SensorAlert;
        assert.ok(target, JSON.stringify(active));
        const res = await fetch(`${base}/api/alerts/${target.alert_id}/ack`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ by: "kafka-test" }),
        });
        assert.equal(res.status, 200);
        const { alert } = await res.json();
        assert.equal(alert.acknowledged, true);
        assert.equal(alert.acknowledged_by, "kafka-test");

        // Ten minutes of event time later both humidity sensors are still out of range: the
        // acknowledged one stays quiet, the other one repeats (proof that repeats would happen).
        await send(n.events, [[], [
          ev("hum-001", "humidity", 91, 600_000),
          ev("hum-002", "humidity", 92, 600_000),
        ], []]);
        await waitFor("the engine to commit", async () => (await groupLag(n.group, n.events)) === 0, 60_000);
        await waitFor(
          "the notifier to commit",
          async () => (await groupLag(n.notifierGroup, n.alerts)) === 0,
          60_000,
        );
        const records = (await readTopic(n.alerts, (v) => v.length >= 6, 30_000)).map((r) =>
          SensorAlert.parse(JSON.parse(r.value))
        );
        const summary = records.map((a) =>
          `${a.sensor_id} ${a.state} ack=${a.acknowledged} ${
            a["ack_update"] === true ? "ack-update" : `repeat=${a["repeat"]}`
          }`
        ).sort();
        assert.deepEqual(summary, [
          "hum-001 firing ack=false repeat=0",
          "hum-001 firing ack=true ack-update",
          "hum-002 firing ack=false repeat=0",
          "hum-002 firing ack=false repeat=1",
          "temp-001 firing ack=false repeat=0",
          "temp-001 resolved ack=false repeat=0",
        ]);
        const m = await scrape(base);
        assert.equal(
          m.value("sensor_notifications_total", { notifier: "console", outcome: "delivered" }),
          5,
          "the repeat, not the acknowledgement",
        );
        const acked = await (await fetch(`${base}/api/alerts?state=acknowledged`)).json();
        assert.deepEqual(
          acked.active.map((a: SensorAlert) => a.alert_id),
          [target.alert_id],
        );
        const unknown = await fetch(`${base}/api/alerts/no-such-alert/ack`, {
          method: "POST",
          headers: { "content-type": "application/json" },
        });
        await unknown.body?.cancel();
        assert.equal(unknown.status, 404);
      },
    );
  } finally {
    const status = await service.stop();
    assert.equal(status.code, 0, service.stderr().slice(-2000));
    await Deno.remove(rulesDir, { recursive: true });
  }
});
