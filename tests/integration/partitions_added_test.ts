/**
 * Partitions added to the input topic while the exactly-once service runs: the new partitions are
 * read within seconds (kafkajs's own metadata refresh took minutes), their state gets a changelog
 * partition of its own, and a restart restores it instead of firing the open episode again.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { Partitioners } from "kafkajs";
import { partitionOf } from "../../src/transport/partitioner.ts";
import { partitionCounts } from "../../src/transport/topics.ts";
import {
  createTopics,
  groupLag,
  kafka,
  readTopic,
  recreateTopic,
  topicEnv,
  uniqueNames,
  waitFor,
  withAdmin,
} from "../helpers/kafka.ts";
import { httpUrl, startService } from "../helpers/service.ts";

/** One out-of-range event for `sensor` on an explicit partition (the key still matches the event). */
async function sendTo(topic: string, partition: number, sensor: string, i: number): Promise<void> {
  const producer = kafka().producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  try {
    const event = {
      event_id: `${sensor}-${i}`,
      sensor_id: sensor,
      sensor_type: "temperature",
      value: 40 + i,
      unit: "°C",
      timestamp: new Date().toISOString(),
    };
    await producer.send({
      topic,
      acks: -1,
      messages: [{ partition, key: `temperature:${sensor}`, value: Buffer.from(JSON.stringify(event)) }],
    });
  } finally {
    await producer.disconnect();
  }
}

/** A sensor on partition 0 of `from` whose key goes elsewhere among `to`. */
function moverOf(from: number, to: number): string {
  for (let i = 0;; i++) {
    const key = `temperature:mover-${i}`;
    if (partitionOf(key, from) === 0 && partitionOf(key, to) !== 0) return `mover-${i}`;
  }
}

const resolvedOf = (sensor: string) => (values: string[]) =>
  values.map((v) => JSON.parse(v)).filter((a) => a.sensor_id === sensor && a.state === "resolved");

function firingOf(sensor: string) {
  return (values: string[]) =>
    values.filter((v) => v.includes(`"sensor_id":"${sensor}"`) && v.includes('"state":"firing"'));
}

Deno.test("partitions added mid-stream are read within seconds, get changelog partitions and keep their state across a restart", async () => {
  const n = uniqueNames("grow");
  await createTopics([n.events, n.alerts, n.dlq, n.aggregates], 3);
  const env = {
    ...topicEnv(n),
    SENSOR_PARTITIONS: "3",
    KAFKA_SESSION_TIMEOUT_MS: "6000",
  };
  const state = `${n.group}-state-changelog`;
  let svc = startService(env, ["--role", "engine"]);
  try {
    await svc.waitForLine(/Joined consumer group/, 90_000);
    await sendTo(n.events, 0, "old-1", 1);
    await readTopic(n.alerts, (v) => firingOf("old-1")(v).length >= 1, 60_000);

    await withAdmin((admin) => admin.createPartitions({ topicPartitions: [{ topic: n.events, count: 6 }] }));
    await sendTo(n.events, 5, "new-1", 1);
    // kafkajs's default metadata age is 5 minutes: without the service's own refresh this read times out.
    const fired = await readTopic(n.alerts, (v) => firingOf("new-1")(v).length >= 1, 60_000);
    assert.equal(
      firingOf("new-1")(fired.map((r) => r.value)).length,
      1,
      "the new partition's event was processed",
    );
    assert.equal((await withAdmin((a) => partitionCounts(a, [state]))).get(state), 6, "the changelog grew");

    await svc.stop();
    svc = startService(env, ["--role", "engine"]);
    await svc.waitForLine(/Joined consumer group/, 90_000);
    // Still out of range after the restart: the restored episode goes on, nothing fires again.
    await sendTo(n.events, 5, "new-1", 2);
    await sendTo(n.events, 5, "marker-1", 1);
    await readTopic(n.alerts, (v) => firingOf("marker-1")(v).length >= 1, 60_000);
    // The alerts of the two sensors are on different partitions: read them all once more.
    const after = await readTopic(n.alerts, () => false, 3_000);
    assert.equal(
      firingOf("new-1")(after.map((r) => r.value)).length,
      1,
      `the open episode of the new partition was restored, not fired again\n${svc.stderr().slice(-6000)}`,
    );
  } finally {
    await svc.stop();
  }
});

/**
 * An exactly-once engine fires on one sensor and stops; `meanwhile` does something to its changelog;
 * the next start must refuse with one line that matches `refusal` (no stack), `refused` checks what
 * else it must have left alone, and a start with `--accept-empty-state` must say `accepted` and join.
 */
async function refusedChangelog(
  name: string,
  meanwhile: (state: string) => Promise<void>,
  refusal: RegExp,
  accepted: RegExp,
  refused: (state: string) => Promise<void> = () => Promise.resolve(),
): Promise<void> {
  const n = uniqueNames(name);
  await createTopics([n.events, n.alerts, n.dlq, n.aggregates], 3);
  const env = { ...topicEnv(n), SENSOR_PARTITIONS: "3" };
  const state = `${n.group}-state-changelog`;
  let svc = startService(env, ["--role", "engine"]);
  await svc.waitForLine(/Joined consumer group/, 90_000);
  await sendTo(n.events, 0, `${name}-1`, 1);
  await readTopic(n.alerts, (v) => firingOf(`${name}-1`)(v).length >= 1, 60_000);
  await svc.stop();
  await meanwhile(state);
  svc = startService(env, ["--role", "engine"]);
  const line = await svc.waitForLine(/Cannot start|Joined consumer group/, 90_000);
  const status = await svc.stop();
  assert.match(line, /Cannot start/, `started anyway\n${svc.stderr().slice(-3000)}`);
  assert.equal(status.code, 1);
  assert.match(svc.stderr(), refusal);
  assert.doesNotMatch(svc.stderr(), /^\s+at /m, "no stack trace");
  await refused(state);
  svc = startService(env, ["--role", "engine", "--accept-empty-state"]);
  try {
    await svc.waitForLine(accepted, 60_000);
    await svc.waitForLine(/Joined consumer group/, 90_000);
  } finally {
    await svc.stop();
  }
}

Deno.test("the exactly-once service refuses to start when its changelog was deleted, with one line that names the fix", async () => {
  await refusedChangelog(
    "gone",
    async (state) => {
      await withAdmin((admin) => admin.deleteTopics({ topics: [state] }));
      for (let i = 0; i < 100 && (await withAdmin((a) => a.listTopics())).includes(state); i++) {
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    /state changelog .* is missing.*--accept-empty-state/,
    /Starting from empty state: the state changelog was missing/,
    async (state) =>
      assert.ok(
        !(await withAdmin((a) => a.listTopics())).includes(state),
        "the changelog was not recreated empty",
      ),
  );
});

Deno.test("the exactly-once service refuses to start when its changelog was deleted and created again (empty)", async () => {
  await refusedChangelog(
    "recreated-state",
    // Someone "fixes" the missing topic: there again, with the same partitions, and none of the state.
    (state) => recreateTopic(state, 3, { compacted: true }),
    /state changelog .* is not the one .* committed its offsets .*--accept-empty-state/,
    /Starting from empty state: the state changelog was created again/,
  );
});

Deno.test("a sensor whose key moves to a new partition ends its episode on the old one with a resolved notice", async () => {
  const n = uniqueNames("moved");
  await createTopics([n.events, n.alerts, n.dlq, n.aggregates], 3);
  const env = {
    ...topicEnv(n),
    SENSOR_PARTITIONS: "3",
    KAFKA_SESSION_TIMEOUT_MS: "6000",
  };
  const mover = moverOf(3, 6);
  const svc = startService(env, ["--role", "engine"]);
  try {
    await svc.waitForLine(/Joined consumer group/, 90_000);
    await sendTo(n.events, 0, mover, 1);
    await readTopic(n.alerts, (v) => firingOf(mover)(v).length >= 1, 60_000);
    await withAdmin((admin) => admin.createPartitions({ topicPartitions: [{ topic: n.events, count: 6 }] }));
    await sendTo(n.events, partitionOf(`temperature:${mover}`, 6), mover, 2);
    const all = await readTopic(
      n.alerts,
      (v) => resolvedOf(mover)(v).length >= 1 && firingOf(mover)(v).length >= 2,
      60_000,
    );
    const resolved = resolvedOf(mover)(all.map((r) => r.value));
    assert.equal(resolved.length, 1, svc.stderr().slice(-3000));
    assert.equal(resolved[0].resolved_reason, "partition changed");
    const firing = firingOf(mover)(all.map((r) => r.value)).map((v) => JSON.parse(v));
    assert.equal(firing.length, 2, "the new partition judges the sensor afresh");
    assert.equal(resolved[0].alert_id, firing[0].alert_id, "the old episode is the one that ended");
  } finally {
    await svc.stop();
  }
});

/**
 * A mover fires on partition 0 of 3; the service stops, `meanwhile` runs, the events topic grows to 6
 * and the service starts again: the mover's episode on partition 0 ends with a resolved notice.
 */
async function movedWhileDown(name: string, meanwhile: (n: ReturnType<typeof uniqueNames>) => Promise<void>) {
  const n = uniqueNames(name);
  await createTopics([n.events, n.alerts, n.dlq, n.aggregates], 3);
  const env = { ...topicEnv(n), SENSOR_PARTITIONS: "3", KAFKA_SESSION_TIMEOUT_MS: "6000" };
  const mover = moverOf(3, 6);
  let svc = startService(env, ["--role", "engine"]);
  try {
    await svc.waitForLine(/Joined consumer group/, 90_000);
    await sendTo(n.events, 0, mover, 1);
    await readTopic(n.alerts, (v) => firingOf(mover)(v).length >= 1, 60_000);
    await svc.stop();
    await meanwhile(n);
    await withAdmin((admin) => admin.createPartitions({ topicPartitions: [{ topic: n.events, count: 6 }] }));
    svc = startService(env, ["--role", "engine"]);
    await svc.waitForLine(/Joined consumer group/, 90_000);
    const all = await readTopic(n.alerts, (v) => resolvedOf(mover)(v).length >= 1, 60_000).catch((err) => {
      throw new Error(`${err.message}\n${svc.stderr().slice(-3000)}`);
    });
    const resolved = resolvedOf(mover)(all.map((r) => r.value));
    assert.equal(resolved.length, 1);
    assert.equal(resolved[0].resolved_reason, "partition changed");
  } finally {
    await svc.stop();
  }
}

Deno.test("a sensor whose key moved while the service was down ends its episode on the old partition when the service starts again", async () => {
  // Partition 0's state was written under 3 partitions: restored under 6, the mover leaves it.
  await movedWhileDown("moved-down", () => Promise.resolve());
});

Deno.test("state written without a record of its partition count (by a version before there were any) still ends a moved sensor's episode when restored after partitions were added", async () => {
  await movedWhileDown("moved-legacy", async (n) => {
    // Partition 0's changelog as a version before 54ab844 left it: its state, no partition count
    // (its key compacted away: a tombstone).
    const producer = kafka().producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    try {
      await producer.send({
        topic: `${n.group}-state-changelog`,
        acks: -1,
        messages: [{ partition: 0, key: "parts", value: null }],
      });
    } finally {
      await producer.disconnect();
    }
  });
});

Deno.test("a changelog created again while the service runs: the partition it cannot restore is held back, unready and counted, said once", async () => {
  const name = "held";
  const n = uniqueNames(name);
  await createTopics([n.events, n.alerts, n.dlq, n.aggregates], 3);
  const env = { ...topicEnv(n), SENSOR_PARTITIONS: "3", KAFKA_SESSION_TIMEOUT_MS: "6000", WORKERS: "1" };
  const state = `${n.group}-state-changelog`;
  const a = startService(env, ["--role", "engine"]);
  let b: ReturnType<typeof startService> | null = null;
  try {
    await a.waitForLine(/Joined consumer group/, 90_000);
    await sendTo(n.events, 0, `${name}-1`, 1);
    await readTopic(n.alerts, (v) => firingOf(`${name}-1`)(v).length >= 1, 60_000);
    await waitFor(
      "partition 0's offset committed",
      async () => await groupLag(n.group, n.events) === 0,
      60_000,
    );
    // A second member joins; the changelog is created again; the first leaves: the rebalance
    // restores partition 0 on the second, from a changelog that holds none of its state.
    b = startService(env, ["--role", "engine"]);
    await b.waitForLine(/Joined consumer group/, 90_000);
    await recreateTopic(state, 3, { compacted: true });
    await a.stop();
    const urls = [await httpUrl(b)];
    const held = await waitFor("partition 0 held back", async () => {
      for (const url of urls) {
        const ready = await fetch(`${url}/readyz`).then((r) =>
          r.json() as Promise<{ ready: boolean; reason?: string }>
        )
          .catch(() => ({ ready: true, reason: undefined }));
        if (!ready.ready && /partition 0 of .* held back: the state changelog/.test(ready.reason ?? "")) {
          return url;
        }
      }
      return undefined;
    }, 90_000);
    const metrics = await (await fetch(`${held}/metrics`)).text();
    assert.match(metrics, /^sensor_partitions_held\{group="[^"]+",topic="[^"]+"\} 1$/m);
    // Looked at again every 30 s, said once meanwhile.
    await new Promise((r) => setTimeout(r, 5_000));
    const said = [a, b].flatMap((s) => s.stderr().split("\n"))
      .filter((l) => l.includes("deleted and created again while the engine ran")).length;
    assert.equal(said, 1);
  } finally {
    await b?.stop();
    await a.stop();
  }
});
