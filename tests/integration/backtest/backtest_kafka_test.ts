/**
 * The backtest against what the service really did: the same recording through the service on the
 * real broker (alerts read back from its alerts topic) and through `deno task backtest`, from stdin
 * and from the events topic by time range, compared alert by alert.
 */
import assert from "node:assert/strict";
import { createTopics, produce, readTopic, topicEnv, uniqueNames, withAdmin } from "../../helpers/kafka.ts";
import { startService } from "../../helpers/service.ts";
import { ndjson, recording, runBacktest, shippedRulesDir } from "../../backtest/_recording.ts";

interface Alert {
  alert_id: string;
  rule_id: string;
  state: string;
  sensor_id: string;
  group?: string;
  timestamp: string;
  value: number;
  repeat?: number;
  priority: string;
  fired_at?: string | null;
  message: string;
  threshold: number | null;
}

/** What an alert says, without the wall-clock field (`raised_at`), in a stable order. */
function comparable(alerts: readonly Alert[]): string[] {
  return alerts.map((a) =>
    JSON.stringify([
      a.timestamp,
      a.rule_id,
      a.group ?? a.sensor_id,
      a.state,
      a.repeat ?? 0,
      a.alert_id,
      a.sensor_id,
      a.value,
      a.threshold,
      a.priority,
      a.fired_at ?? null,
      a.message,
    ])
  ).sort();
}

/** The service's alerts on the real broker, up to the sentinel's (the recording's last event). */
async function serviceAlerts(
  n: ReturnType<typeof uniqueNames>,
  rulesDir: string,
): Promise<Alert[]> {
  const svc = startService({ ...topicEnv(n), RULES_DIR: rulesDir, SENSOR_PARTITIONS: "1" }, [
    "--role",
    "engine",
  ]);
  try {
    const values = await readTopic(
      n.alerts,
      (v) => v.some((x) => x.includes('"sensor_id":"sentinel"')),
      120_000,
    );
    const alerts = values.map((r) => JSON.parse(r.value) as Alert);
    const last = alerts.findIndex((a) => a.sensor_id === "sentinel");
    assert.ok(last >= 0, `The service raised no sentinel alert:\n${svc.stderr().slice(-3000)}`);
    return alerts.slice(0, last + 1);
  } finally {
    await svc.stop();
  }
}

async function committed(group: string, topic: string): Promise<string> {
  return await withAdmin(async (admin) => {
    const [t] = await admin.fetchOffsets({ groupId: group, topics: [topic] });
    return JSON.stringify(t?.partitions.map((p) => [p.partition, p.offset]).sort());
  });
}

async function backtestGroups(): Promise<string[]> {
  return await withAdmin(async (admin) =>
    (await admin.listGroups()).groups.map((g) => g.groupId).filter((g) => g.startsWith("backtest-"))
  );
}

Deno.test("backtest --input - and --from/--to raise, alert by alert, the alerts the service raised on the broker from the same events", async () => {
  const n = uniqueNames("backtest-parity");
  await createTopics([n.events, n.alerts, n.dlq, n.aggregates], 1);
  const rulesDir = await shippedRulesDir();
  const t0 = Math.floor((Date.now() - 2 * 3_600_000) / 300_000) * 300_000;
  const rec = recording(t0);
  const from = new Date(Date.now() - 1000).toISOString();
  await produce(n.events, rec);
  const to = new Date(Date.now() + 1000).toISOString();
  const service = await serviceAlerts(n, rulesDir);

  const out = await runBacktest(["--input", "-", "--json", "--rules", rulesDir], { stdin: ndjson(rec) });
  assert.equal(out.code, 0, out.stdout + out.stderr);
  const report = JSON.parse(out.stdout) as { alerts: Alert[]; rules: { rule_id: string; alerts: unknown }[] };
  // The recording has each kind the comparison is about.
  const kinds = new Set(
    report.alerts.map((a) => `${a.rule_id} ${a.state}${(a.repeat ?? 0) > 0 ? " repeat" : ""}`),
  );
  for (
    const k of [
      "temperature-hot-repeat firing repeat",
      "co2-average-high firing",
      "co2-average-high resolved",
      "sensor-silent firing",
      "sensor-silent resolved",
    ]
  ) assert.ok(kinds.has(k), `No "${k}" in the backtest: ${[...kinds].join(", ")}`);
  assert.deepEqual(comparable(report.alerts), comparable(service));

  // The same from the events topic, by time range: the same alerts again.
  const offsets = await committed(n.group, n.events);
  const kafkaRun = await runBacktest(["--from", from, "--to", to, "--json", "--rules", rulesDir], {
    env: { KAFKA_BROKERS: topicEnv(n).KAFKA_BROKERS!, SENSOR_TOPIC: n.events },
  });
  assert.equal(kafkaRun.code, 0, kafkaRun.stdout + kafkaRun.stderr);
  const fromKafka = JSON.parse(kafkaRun.stdout) as { alerts: Alert[]; input: { records: number } };
  assert.equal(fromKafka.input.records, rec.length);
  assert.deepEqual(comparable(fromKafka.alerts), comparable(service));
  assert.equal(await committed(n.group, n.events), offsets);
  await Deno.remove(rulesDir, { recursive: true });
});

Deno.test("backtest --from/--to reads the events topic's range without touching the service group's offsets", async () => {
  const n = uniqueNames("backtest-range");
  await createTopics([n.events, n.alerts, n.dlq, n.aggregates], 2);
  const rulesDir = await shippedRulesDir();
  const t0 = Math.floor((Date.now() - 2 * 3_600_000) / 300_000) * 300_000;
  const before = recording(t0 - 3_600_000).slice(0, 50);
  // Three parts produced apart in time, so the broker's record times separate them.
  await produce(n.events, before.map((r) => ({ ...r, value: r.value.replaceAll('"hum-1"', '"early-1"') })));
  await new Promise((r) => setTimeout(r, 1_500));
  const from = new Date().toISOString();
  const rec = recording(t0);
  await produce(n.events, rec);
  await new Promise((r) => setTimeout(r, 1_500));
  const to = new Date().toISOString();
  await produce(n.events, [{
    key: "temperature:after-1",
    value: JSON.stringify({
      event_id: "after-1",
      sensor_id: "after-1",
      sensor_type: "temperature",
      value: 99,
      unit: "°C",
      timestamp: new Date(t0 + 1_300_000).toISOString(),
    }),
  }]);

  // The service's group has committed offsets (a run over part of the topic) before the backtest.
  const svc = startService({ ...topicEnv(n), RULES_DIR: rulesDir, SENSOR_PARTITIONS: "2" }, [
    "--role",
    "engine",
  ]);
  try {
    await readTopic(n.alerts, (v) => v.some((x) => x.includes('"sensor_id":"after-1"')), 120_000);
    // Let the last transaction, and the offsets with it, commit before the stop.
    await new Promise((r) => setTimeout(r, 2_000));
  } finally {
    await svc.stop();
  }
  // The offsets of the service's last transaction become readable once the broker wrote its commit
  // marker, a moment after the process ended: read until two reads a second apart agree (10 at most).
  let offsetsBefore = await committed(n.group, n.events);
  for (let i = 0; i < 10; i++) {
    await new Promise((r) => setTimeout(r, 1_000));
    const again = await committed(n.group, n.events);
    if (again === offsetsBefore) break;
    offsetsBefore = again;
  }
  assert.ok(
    !offsetsBefore.includes('"-1"') && offsetsBefore !== "[]",
    `The service group committed no offsets: ${offsetsBefore}`,
  );
  const groupsBefore = await backtestGroups();

  const kafkaRun = await runBacktest(["--from", from, "--to", to, "--json", "--rules", rulesDir], {
    env: { KAFKA_BROKERS: topicEnv(n).KAFKA_BROKERS!, SENSOR_TOPIC: n.events },
  });
  assert.equal(kafkaRun.code, 0, kafkaRun.stdout + kafkaRun.stderr);
  const fromKafka = JSON.parse(kafkaRun.stdout) as { alerts: Alert[]; input: { records: number } };
  assert.equal(fromKafka.input.records, rec.length, "exactly the records between --from and --to");
  assert.ok(!fromKafka.alerts.some((a) => a.sensor_id === "early-1" || a.sensor_id === "after-1"));

  // Two partitions: each its own event time, as in the service. Records of one sensor share one.
  const fileRun = await runBacktest(["--input", "-", "--json", "--rules", rulesDir], { stdin: ndjson(rec) });
  const fromFile = JSON.parse(fileRun.stdout) as { alerts: Alert[] };
  const own = (a: Alert) => a.rule_id !== "sensor-silent";
  assert.deepEqual(comparable(fromKafka.alerts.filter(own)), comparable(fromFile.alerts.filter(own)));

  assert.equal(
    await committed(n.group, n.events),
    offsetsBefore,
    "the service group's offsets are untouched",
  );
  assert.deepEqual(await backtestGroups(), groupsBefore, "the backtest's own group is gone");
  await Deno.remove(rulesDir, { recursive: true });
});
