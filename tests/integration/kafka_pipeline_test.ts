/**
 * The foundation end to end through the real broker: events in, alerts and DLQ records out,
 * offsets committed, nothing lost across a stop in mid-stream.
 */
import assert from "node:assert/strict";
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
import { startService } from "../helpers/service.ts";

function serviceEnv(n: ReturnType<typeof uniqueNames>): Record<string, string> {
  return {
    ...topicEnv(n),
    SENSOR_PARTITIONS: "3",
  };
}

function ev(i: number, over: Partial<SensorEventInput>): SensorEventInput {
  return {
    event_id: `it-${i}`,
    sensor_id: "temp-001",
    sensor_type: "temperature",
    value: 22,
    unit: "°C",
    timestamp: new Date(Date.UTC(2026, 10, 25, 21, 0, 0) + i * 1000).toISOString().replace("Z", ""),
    location: "Building A, Floor 1",
    metadata: { battery_level: 80 },
    ...over,
  };
}

const msg = (e: SensorEventInput) => ({ key: `${e.sensor_type}:${e.sensor_id}`, value: JSON.stringify(e) });

Deno.test("known out-of-range events give exactly the expected alerts on the alerts topic", async () => {
  const n = uniqueNames("alerts");
  await createTopics([n.events, n.alerts, n.dlq, n.aggregates]);
  // Six sensors, each with its own story: one episode each where the value leaves the band.
  const events: SensorEventInput[] = [];
  let i = 0;
  const series: [string, "temperature" | "humidity" | "co2" | "pressure" | "light", number[]][] = [
    ["temp-001", "temperature", [22, 36, 37, 38, 22]], // one firing, one resolved
    ["temp-002", "temperature", [20, 9, 21]], // one firing (below), one resolved
    ["hum-001", "humidity", [50, 85, 86]], // one firing, still firing at the end
    ["co2-001", "co2", [400, 999, 1000]], // never above 1000: nothing
    ["press-001", "pressure", [1013, 970, 1013]], // one firing, one resolved
    ["light-001", "light", [500, 5000]], // no rule for light
  ];
  for (const [sensor_id, sensor_type, values] of series) {
    for (const value of values) events.push(ev(i++, { sensor_id, sensor_type, value }));
  }
  await produce(n.events, events.map(msg));

  const service = startService(serviceEnv(n));
  try {
    const expected = 7;
    const records = await readTopic(n.alerts, (v) => v.length >= expected, 60_000);
    // Give a wrong extra alert the chance to show up before we compare exactly.
    await waitFor("the consumer group to commit", async () => (await groupLag(n.group, n.events)) === 0);
    const alerts = (await readTopic(n.alerts, (v) => v.length >= expected, 2_000)).map((r) =>
      SensorAlert.parse(JSON.parse(r.value))
    );
    assert.ok(records.length >= expected);
    const summary = alerts.map((a) =>
      `${a.sensor_id} ${a.rule_id} ${a.state} ${a.priority} ${a.value} ${a.threshold}`
    )
      .sort();
    assert.deepEqual(summary, [
      "hum-001 humidity-out-of-range firing normal 85 80",
      "press-001 pressure-out-of-range firing normal 970 980",
      "press-001 pressure-out-of-range resolved normal 1013 980",
      "temp-001 temperature-out-of-range firing high 36 35",
      "temp-001 temperature-out-of-range resolved high 22 35",
      "temp-002 temperature-out-of-range firing high 9 10",
      "temp-002 temperature-out-of-range resolved high 21 10",
    ]);
    const record = (await readTopic(n.alerts, (v) => v.length >= 1, 5_000))[0]!;
    const alert = SensorAlert.parse(JSON.parse(record.value));
    assert.equal(record.key, `${alert.sensor_type}:${alert.sensor_id}`, "alerts are keyed like events");
    for (const a of alerts) {
      assert.equal(typeof a.alert_id, "string");
      assert.equal(a.acknowledged, false);
      assert.match(a.timestamp, /Z$/);
    }
    // The notifier stage consumed the alerts topic and printed them through the console plugin.
    await service.waitForLine(
      /"state":"resolved".*"sensor_id":"press-001"|"sensor_id":"press-001".*"state":"resolved"/,
    );
  } finally {
    const status = await service.stop("SIGTERM");
    assert.equal(status.code, 0, service.stderr().slice(-2000));
  }
  assert.match(service.stdout(), /temp-001\s+temperature\s+5\s+31\.00/, "per-sensor stats on shutdown");
  // Every log line is the service's own JSON: no plain-text process warning from kafkajs's timers.
  assert.doesNotMatch(service.stderr(), /TimeoutNegativeWarning/);
});

Deno.test("malformed messages land in the DLQ with reasons and later good messages are processed", async () => {
  const n = uniqueNames("dlq");
  await createTopics([n.events, n.alerts, n.dlq, n.aggregates], 1);
  const good = ev(1, { sensor_id: "temp-009", value: 50 });
  await produce(n.events, [
    { key: "temperature:temp-009", value: "{not json" },
    { key: "temperature:temp-009", value: JSON.stringify({ ...good, event_id: "bad-type", value: "hot" }) },
    { key: "temperature:temp-009", value: null },
    { key: "temperature:temp-009", value: new Uint8Array([0x7b, 0xc3, 0x28, 0x7d]) },
    { key: "temperature:temp-009", value: JSON.stringify({ ...good, event_id: "v2", schema_version: 2 }) },
    { key: "humidity:temp-009", value: JSON.stringify({ ...good, event_id: "wrong-key" }) },
    {
      key: "temperature:temp-009",
      value: JSON.stringify({ ...good, event_id: "huge", unit: "x".repeat(600_000) }),
    },
    // Accepted before: each held its 250 KB timestamp in its alert, its episode and the API's alerts.
    {
      key: "temperature:temp-009",
      value: JSON.stringify({
        ...good,
        event_id: "long-ts",
        timestamp: `2026-12-02T05:00:00.${"1".repeat(250_000)}Z`,
      }),
    },
    // Accepted before: the NUL broke the sensor's state changelog keys, its state lost on a restart.
    msg({ ...good, event_id: "nul", sensor_id: "evil\u0000x" }),
    msg(good),
  ]);
  const service = startService(serviceEnv(n));
  try {
    const dlq = (await readTopic(n.dlq, (v) => v.length >= 9, 60_000)).map((r) =>
      DlqRecord.parse(JSON.parse(r.value))
    );
    assert.equal(dlq.length, 9);
    const reasons = dlq.map((d) => `${d.original_offset} ${d.stage} ${d.error}`);
    assert.match(reasons[0]!, /^0 decode Message value is not valid JSON/);
    assert.match(reasons[1]!, /^1 validate Field "value"/);
    assert.match(reasons[2]!, /^2 decode Message value is null/);
    assert.match(reasons[3]!, /^3 decode Message value is not valid UTF-8/);
    assert.match(reasons[4]!, /^4 validate Field "schema_version"/);
    assert.match(reasons[5]!, /^5 validate Message key "humidity:temp-009" does not match/);
    assert.match(reasons[6]!, /^6 decode Message value of \d+ bytes exceeds the limit/);
    assert.equal(reasons[7], '7 validate Field "timestamp": 250021 characters, at most 64 allowed');
    assert.equal(reasons[8], '8 validate Field "sensor_id": control character U+0000 at index 4');
    assert.equal(dlq[3]!.original_value, "{\uFFFD(}", "invalid UTF-8 is replaced");
    for (const d of dlq) {
      assert.equal(d.original_topic, n.events);
      assert.equal(d.original_partition, 0);
      assert.equal(d.retry_count, 0);
    }
    const alerts = await readTopic(n.alerts, (v) => v.length >= 1, 30_000);
    assert.equal(SensorAlert.parse(JSON.parse(alerts[0]!.value)).event_id, good.event_id);
    await waitFor("offsets past the poison messages", async () => (await groupLag(n.group, n.events)) === 0);
  } finally {
    assert.equal((await service.stop()).code, 0);
  }
});

Deno.test("a service stopped mid-stream and started again loses no event", async () => {
  const n = uniqueNames("restart");
  await createTopics([n.events, n.alerts, n.dlq, n.aggregates], 3);
  // Every event is the first of its own episode (its own sensor, out of range), so every processed
  // event leaves an alert carrying its event_id: processed = ids on the alerts topic.
  const total = 3000;
  const events = Array.from(
    { length: total },
    (_, i) => ev(i, { event_id: `r-${i}`, sensor_id: `t-${i}`, value: 40 }),
  );
  const garbage = Array.from(
    { length: 30 },
    (_, i) => ({ key: `temperature:t-g${i}`, value: `garbage ${i}` }),
  );
  const messages = [...events.map(msg), ...garbage];
  const env = serviceEnv(n);

  const first = startService(env);
  // The stream keeps flowing: half is produced while the first instance runs, the rest after it stopped.
  await first.waitForLine(/Joined consumer group.*processors|processors.*Joined consumer group/, 60_000);
  const half = Math.floor(messages.length / 2);
  const producing = produce(n.events, messages.slice(0, half));
  await readTopic(n.alerts, (v) => v.length >= 100, 60_000);
  assert.equal((await first.stop("SIGTERM")).code, 0, first.stderr().slice(-2000));
  await producing;
  await produce(n.events, messages.slice(half));
  assert.ok(await groupLag(n.group, n.events) > 0, "the first instance stopped before the end of the stream");

  const second = startService(env);
  try {
    await waitFor("the group to catch up", async () => (await groupLag(n.group, n.events)) === 0, 90_000)
      .catch((e) => {
        throw new Error(`${e.message}\n${second.stderr().slice(-4000)}`);
      });
    const alertIds = new Set(
      (await readTopic(n.alerts, (v) => new Set(v.map((x) => JSON.parse(x).event_id)).size >= total, 60_000))
        .map((r) => JSON.parse(r.value).event_id as string),
    );
    const dlqValues = new Set(
      (await readTopic(n.dlq, (v) => v.length >= garbage.length, 30_000)).map((r) =>
        JSON.parse(r.value).original_value as string
      ),
    );
    const lost = events.filter((e) => !alertIds.has(e.event_id)).length +
      garbage.filter((g) => !dlqValues.has(g.value)).length;
    assert.equal(lost, 0, `lost ${lost} of ${messages.length}`);
  } finally {
    assert.equal((await second.stop("SIGTERM")).code, 0);
  }
});

for (const guarantee of ["exactly_once", "at_least_once"] as const) {
  Deno.test(`${guarantee}: an event nested 100,000 levels deep lands in the DLQ with its reason and the next event alerts`, async () => {
    const n = uniqueNames(`deep-${guarantee === "exactly_once" ? "eos" : "alo"}`);
    await createTopics([n.events, n.alerts, n.dlq, n.aggregates], 1);
    const deep = ev(1, { event_id: "deep", sensor_id: "temp-deep", value: 50 });
    // 2 bytes a level: 200 KB, under the message size limit; JSON.stringify of its alert would throw.
    const deepValue = JSON.stringify({ ...deep, metadata: "X" })
      .replace('"X"', `{"a":${"[".repeat(100_000)}1${"]".repeat(100_000)}}`);
    const next = ev(2, { event_id: "after-deep", sensor_id: "temp-deep", value: 50 });
    await produce(n.events, [
      { key: "temperature:temp-deep", value: deepValue },
      { key: "temperature:temp-deep", value: JSON.stringify({ ...next, event_id: "x".repeat(200_000) }) },
      msg(next),
    ]);
    const service = startService({ ...serviceEnv(n), PROCESSING_GUARANTEE: guarantee });
    try {
      const dlq = (await readTopic(n.dlq, (v) => v.length >= 2, 60_000)).map((r) =>
        DlqRecord.parse(JSON.parse(r.value))
      );
      assert.deepEqual(dlq.map((d) => `${d.original_offset} ${d.stage}`), ["0 validate", "1 validate"]);
      assert.match(dlq[0]!.error, /^Field "metadata\.a\.0\.0.*": nested deeper than \d+ levels$/);
      assert.match(dlq[1]!.error, /^Field "event_id": 200000 characters, at most \d+ allowed$/);
      const alerts = (await readTopic(n.alerts, (v) => v.length >= 1, 60_000)).map((r) =>
        SensorAlert.parse(JSON.parse(r.value))
      );
      assert.deepEqual(alerts.map((a) => `${a.event_id} ${a.state}`), ["after-deep firing"]);
      await waitFor("offsets past the hostile events", async () => (await groupLag(n.group, n.events)) === 0);
    } finally {
      assert.equal((await service.stop()).code, 0, service.stderr().slice(-2000));
    }
    assert.doesNotMatch(service.stderr(), /Maximum call stack|NonRetriable|Crash/i);
  });
}

for (const guarantee of ["exactly_once", "at_least_once"] as const) {
  Deno.test(`${guarantee}: ten 100 KB values of invalid UTF-8 in one fetch land in the DLQ and the next event alerts`, async () => {
    const n = uniqueNames(`junk-${guarantee === "exactly_once" ? "eos" : "alo"}`);
    await createTopics([n.events, n.alerts, n.dlq, n.aggregates], 1);
    // Each 0xFF byte decodes to U+FFFD: 1 character but 3 bytes of UTF-8, so a DLQ record counted in
    // characters (65,824) was 196,896 bytes, and the 10 of one fetch went out in one chunk of
    // 1,378,279 bytes, over the broker's 1,048,588: refused for ever, the engine stalled.
    const junk = Array.from({ length: 10 }, () => ({
      key: "temperature:temp-junk",
      value: new Uint8Array(100_000).fill(0xff),
    }));
    const next = ev(1, { event_id: "after-junk", sensor_id: "temp-junk", value: 50 });
    await produce(n.events, [...junk, msg(next)]);
    const service = startService({ ...serviceEnv(n), PROCESSING_GUARANTEE: guarantee });
    try {
      const dlq = (await readTopic(n.dlq, (v) => v.length >= junk.length, 45_000)).map((r) =>
        DlqRecord.parse(JSON.parse(r.value))
      );
      assert.deepEqual(
        dlq.map((d) => `${d.original_offset} ${d.stage}`),
        junk.map((_, i) => `${i} decode`),
        service.stderr().slice(-3000),
      );
      const encoder = new TextEncoder();
      for (const d of dlq) {
        assert.match(d.error, /^Message value is not valid UTF-8/);
        assert.equal(d.original_value_truncated, true);
        assert.equal(d.original_size, 100_000);
        // What is kept is at most 64 KiB of UTF-8, whole characters only.
        const kept = encoder.encode(d.original_value!).byteLength;
        assert.ok(kept <= 64 * 1024 && kept > 60_000, `${kept} bytes of the original value kept`);
        assert.match(d.original_value!, /^\uFFFD+$/);
      }
      const alerts = (await readTopic(n.alerts, (v) => v.length >= 1, 45_000)).map((r) =>
        SensorAlert.parse(JSON.parse(r.value))
      );
      assert.deepEqual(alerts.map((a) => `${a.event_id} ${a.state}`), ["after-junk firing"]);
      await waitFor("offsets past the junk", async () => (await groupLag(n.group, n.events)) === 0);
    } finally {
      assert.equal((await service.stop()).code, 0, service.stderr().slice(-2000));
    }
  });
}
