/**
 * History read again: the engine group's offsets reset to the earliest. Records beyond the duplicate
 * window are processed once more, and the alerts they raise repeat the first ones (same `alert_id`
 * and state) marked `replayed`, so a consumer can drop them.
 */
import assert from "node:assert/strict";
import { createTopics, produce, readTopic, topicEnv, uniqueNames, withAdmin } from "../helpers/kafka.ts";
import { startService } from "../helpers/service.ts";

function event(sensor: string, i: number, value: number) {
  const e = {
    event_id: `${sensor}-${i}`,
    sensor_id: sensor,
    sensor_type: "temperature",
    value,
    unit: "°C",
    timestamp: new Date(Date.now() - 60_000 + i).toISOString(),
  };
  return { key: `temperature:${e.sensor_id}`, value: JSON.stringify(e) };
}

interface Alert {
  alert_id: string;
  sensor_id: string;
  state: string;
  replayed?: boolean;
}

Deno.test("offsets reset to the earliest: re-published alerts keep their alert_id and are marked replayed", async () => {
  const n = uniqueNames("history");
  await createTopics([n.events, n.alerts, n.dlq, n.aggregates], 1);
  // One engine thread: with WORKERS=2 the group was still "CompletingRebalance" after SIGTERM (the
  // idle worker rejoins as the other leaves), and resetOffsets refuses a group with members.
  const env = { ...topicEnv(n), SENSOR_PARTITIONS: "1", WORKERS: "1" };
  // A firing and a resolved alert, then more events than the duplicate check remembers.
  const first = [event("hot-1", 0, 45), event("hot-1", 1, 20)];
  const filler = Array.from({ length: 700 }, (_, i) => event(`calm-${i}`, 2 + i, 20));
  await produce(n.events, [...first, ...filler]);
  let svc = startService(env, ["--role", "engine"]);
  let original: Alert[];
  try {
    const values = await readTopic(n.alerts, (v) => v.length >= 2, 60_000);
    original = values.map((r) => JSON.parse(r.value) as Alert);
    assert.deepEqual(original.map((a) => `${a.sensor_id} ${a.state} ${a.replayed ?? false}`), [
      "hot-1 firing false",
      "hot-1 resolved false",
    ]);
    // Let the last transaction with the partition's position commit before the stop.
    await new Promise((r) => setTimeout(r, 2_000));
  } finally {
    await svc.stop();
  }
  await withAdmin((admin) => admin.resetOffsets({ groupId: n.group, topic: n.events, earliest: true }));
  await produce(n.events, [event("new-1", 10_000, 45)]);
  svc = startService(env, ["--role", "engine"]);
  try {
    const values = await readTopic(
      n.alerts,
      (v) => v.some((x) => x.includes('"sensor_id":"new-1"')),
      60_000,
    );
    const alerts = values.map((r) => JSON.parse(r.value) as Alert);
    const again = alerts.slice(2).filter((a) => a.sensor_id === "hot-1");
    assert.equal(again.length, 2, svc.stderr().slice(-3000));
    for (const [i, a] of again.entries()) {
      assert.equal(a.replayed, true);
      assert.equal(a.alert_id, original[i]!.alert_id);
      assert.equal(a.state, original[i]!.state);
    }
    const fresh = alerts.find((a) => a.sensor_id === "new-1")!;
    assert.equal(fresh.replayed, undefined, "a record read for the first time is not a replay");
    assert.match(svc.stderr(), /Re-reading records processed before/);
  } finally {
    await svc.stop();
  }
});
