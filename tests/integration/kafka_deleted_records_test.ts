/**
 * Events deleted (retention, DeleteRecords) while the service was away are reported, not skipped in
 * silence: a log line, a metric and one DLQ record per gap.
 */
import assert from "node:assert/strict";
import { DlqRecord } from "../../src/contract/schemas.ts";
import {
  createTopics,
  groupLag,
  produce,
  readTopic,
  topicEnv,
  uniqueNames,
  waitFor,
  withAdmin,
} from "../helpers/kafka.ts";
import { httpUrl, startService } from "../helpers/service.ts";

function events(from: number, to: number) {
  return Array.from({ length: to - from }, (_, i) => {
    const e = {
      event_id: `gap-${from + i}`,
      sensor_id: `s-${from + i}`,
      sensor_type: "temperature",
      value: 21,
      unit: "°C",
      timestamp: new Date().toISOString(),
    };
    return { key: `temperature:${e.sensor_id}`, value: JSON.stringify(e) };
  });
}

Deno.test("events deleted before the service read them are reported per gap: log line, metric and DLQ record", async () => {
  const n = uniqueNames("deleted-events");
  await createTopics([n.events], 1);
  const env = { ...topicEnv(n), SENSOR_PARTITIONS: "1" };
  await produce(n.events, events(0, 5));
  const first = startService(env, ["--role", "engine"]);
  try {
    await waitFor(
      "the first 5 events committed",
      async () => await groupLag(n.group, n.events) === 0,
      60_000,
    );
  } finally {
    assert.equal((await first.stop()).code, 0, first.stderr().slice(-2000));
  }

  // While the service is away, 20 more arrive and 15 of them are deleted unread.
  await produce(n.events, events(5, 25));
  await withAdmin(async (admin) => {
    await admin.fetchTopicMetadata({ topics: [n.events] });
    await admin.deleteTopicRecords({ topic: n.events, partitions: [{ partition: 0, offset: "20" }] });
  });
  const second = startService(env, ["--role", "engine"]);
  try {
    const url = await httpUrl(second);
    const line = await second.waitForLine(/Records were deleted before they were read/, 60_000);
    const logged = JSON.parse(line);
    assert.deepEqual([logged.partition, logged.from, logged.to, logged.records], [0, "5", "19", 15]);
    const dlq = await readTopic(n.dlq, (v) => v.some((r) => JSON.parse(r).stage === "source"), 30_000);
    const gaps = dlq.map((r) => DlqRecord.parse(JSON.parse(r.value))).filter((r) => r.stage === "source");
    assert.equal(gaps.length, 1);
    assert.deepEqual(
      [
        gaps[0]!.original_topic,
        gaps[0]!.original_partition,
        gaps[0]!.gap_from,
        gaps[0]!.gap_to,
        gaps[0]!.gap_records,
      ],
      [n.events, 0, "5", "19", 15],
    );
    const metrics = await (await fetch(`${url}/metrics`)).text();
    assert.match(
      metrics,
      new RegExp(
        `sensor_records_deleted_unread_total\\{group="${n.group}",topic="${n.events}",partition="0"\\} 15`,
      ),
    );
    await waitFor("the events left processed", async () => await groupLag(n.group, n.events) === 0, 60_000);
  } finally {
    assert.equal((await second.stop()).code, 0, second.stderr().slice(-2000));
  }
});
