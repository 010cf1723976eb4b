/**
 * Exactly-once, two instances on a two-partition topic: when a partition moves (its owner stops), the
 * new owner restores its state as soon as it is assigned, not at the partition's next record. Its open
 * alerts show in /api/alerts and its silent sensors are reported by the deadman rule, though no record
 * comes to the partition after the move.
 */
import assert from "node:assert/strict";
import type { SensorAlert } from "../../../src/contract/schemas.ts";
import { partitionOf } from "../../../src/transport/partitioner.ts";
import { createTopics, produce, readTopic, topicEnv, uniqueNames, waitFor } from "../../helpers/kafka.ts";
import { httpUrl, type RunningService, startService } from "../../helpers/service.ts";

// The deadman's 20 s leave time for the first owner to be stopped before it would fire the alert
// itself; the new owner counts the silence from the newest event time the partition's state holds.
const RULES = `rules:
  - id: too-hot
    sensor_type: temperature
    threshold: { max: 35 }
    priority: high
  - id: silent
    sensor_type: temperature
    absent_for: 20s
    priority: normal
`;

/** The partitions of the consumer group `group` that `service` owns since its last join. */
function owned(service: RunningService, group: string): string | null {
  const joins = service.stderr().split("\n").filter((l) => l.includes('"msg":"Joined consumer group"'))
    .map((l) => JSON.parse(l) as { group: string; partitions: string })
    .filter((j) => j.group === group);
  return joins.at(-1)?.partitions ?? null;
}

async function firing(base: string): Promise<SensorAlert[]> {
  const { active } = await (await fetch(`${base}/api/alerts?state=firing`)).json() as {
    active: SensorAlert[];
  };
  return active;
}

Deno.test("a partition that moves shows its open alerts and fires its deadman alerts on its new owner without a new record", async () => {
  const n = uniqueNames("eager-restore");
  await createTopics([n.events], 2);
  await createTopics([n.alerts, n.dlq, n.aggregates], 1);
  await Deno.mkdir("tests/artifacts", { recursive: true });
  const rulesDir = await Deno.makeTempDir({ dir: "tests/artifacts", prefix: "rules-" });
  await Deno.writeTextFile(`${rulesDir}/rules.yaml`, RULES);
  const env = {
    ...topicEnv(n),
    RULES_DIR: rulesDir,
    SENSOR_PARTITIONS: "2",
    PROCESSING_GUARANTEE: "exactly_once",
    WORKERS: "1",
    KAFKA_SESSION_TIMEOUT_MS: "6000",
  };
  const first = startService(env);
  let second: RunningService | null = null;
  try {
    await httpUrl(first, 60_000);
    await first.waitForLine(/"msg":"Joined consumer group"/, 60_000);
    second = startService(env);
    const base = await httpUrl(second, 60_000);
    const b = second;
    await waitFor(
      "each instance to own one partition",
      () =>
        Promise.resolve(owned(first, n.group)?.split(",").length === 1 && owned(b, n.group)?.length === 1),
      90_000,
    );
    const moved = Number(owned(first, n.group));
    assert.notEqual(owned(b, n.group), String(moved));

    // Two sensors of the partition that will move go hot once, then fall silent.
    const sensors: string[] = [];
    for (let i = 0; sensors.length < 2 && i < 100; i++) {
      if (partitionOf(`temperature:er-${i}`, 2) === moved) sensors.push(`er-${i}`);
    }
    assert.equal(sensors.length, 2);
    sensors.sort();
    await produce(
      n.events,
      sensors.flatMap((sensor_id, i) =>
        [20, 40].map((value, j) => ({
          key: `temperature:${sensor_id}`,
          value: JSON.stringify({
            event_id: `er-${i}-${j}`,
            sensor_id,
            sensor_type: "temperature",
            value,
            unit: "°C",
            timestamp: new Date().toISOString(),
          }),
        }))
      ),
    );
    const hot = (alerts: SensorAlert[], rule: string) =>
      alerts.filter((a) => a.rule_id === rule && a.state === "firing").map((a) => a.sensor_id).sort();
    await readTopic(
      n.alerts,
      (values) => hot(values.map((v) => JSON.parse(v)), "too-hot").length === 2,
      60_000,
    );

    const status = await first.stop("SIGTERM");
    assert.equal(status.code, 0, first.stderr().slice(-3000));
    await waitFor(
      "the second instance to own both partitions",
      () => Promise.resolve(owned(b, n.group) === "0,1"),
      60_000,
    );

    // No record comes to the moved partition from here on.
    await waitFor(
      "the moved partition's open alerts in the new owner's /api/alerts",
      async () => hot(await firing(base), "too-hot").join() === sensors.join(),
      60_000,
    );
    const alerts = await readTopic(
      n.alerts,
      (values) => hot(values.map((v) => JSON.parse(v)), "silent").length === 2,
      120_000,
    );
    assert.deepEqual(hot(alerts.map((r) => JSON.parse(r.value)), "silent"), sensors);
    assert.deepEqual(hot(await firing(base), "silent"), sensors);
  } finally {
    await first.stop("SIGKILL");
    await second?.stop("SIGKILL");
    await Deno.remove(rulesDir, { recursive: true }).catch(() => {});
  }
});
