/**
 * `TopicHistory` on the real broker: a what-if reads the events topic's window by record time, every
 * partition, within its count bound the newest of each, and leaves no consumer group behind.
 */
import assert from "node:assert/strict";
import { Partitioners } from "kafkajs";
import { parseOneRule, whatIf } from "../../../src/backtest/whatif.ts";
import { TopicHistory } from "../../../src/backtest/whatif_topic.ts";
import { createLogger } from "../../../src/log.ts";
import { createTopics, kafka, uniqueNames, withAdmin } from "../../helpers/kafka.ts";

/** Every event out of range: one episode per sensor read, so the episodes name what was read. */
const RULE = "id: any\nsensor_type: temperature\nthreshold: { max: -1000 }\npriority: low\n";

async function sendTo(topic: string, partition: number, sensors: string[], recordTime: number) {
  const producer = kafka().producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  try {
    await producer.send({
      topic,
      acks: -1,
      messages: sensors.map((sensor, i) => ({
        partition,
        key: `temperature:${sensor}`,
        timestamp: String(recordTime),
        value: JSON.stringify({
          event_id: sensor,
          sensor_id: sensor,
          sensor_type: "temperature",
          value: 1,
          unit: "°C",
          timestamp: new Date(recordTime - 60_000 + i * 1000).toISOString(),
        }),
      })),
    });
  } finally {
    await producer.disconnect();
  }
}

Deno.test("TopicHistory reads the window of every partition, the newest of each within its count bound", async () => {
  const n = uniqueNames("whatif-topic");
  await createTopics([n.events], 3);
  const now = Date.now();
  const names = (p: number, count: number) => Array.from({ length: count }, (_, i) => `p${p}-${i}`);
  // Partition 2 also holds records older than the window, which are never read.
  await sendTo(n.events, 2, ["old-1", "old-2"], now - 3 * 3_600_000);
  await sendTo(n.events, 0, names(0, 10), now);
  await sendTo(n.events, 1, names(1, 20), now);
  await sendTo(n.events, 2, names(2, 10), now);
  const logger = createLogger({ level: "error" });
  const rule = parseOneRule(RULE);
  const groups = async () =>
    await withAdmin(async (admin) =>
      (await admin.listGroups()).groups.map((g) => g.groupId).filter((g) => /^whatif-[0-9a-f-]{36}$/.test(g))
    );
  const before = await groups();

  const all = await whatIf(rule, new TopicHistory({ kafka: kafka(), topic: n.events, logger }));
  assert.equal(all.history.events, 40);
  assert.equal(all.history.capped, false);
  assert.equal(all.report.episodes.length, 40);

  // 40 records in the window, 20 kept: 5, 10 and 5, the newest of each partition.
  const capped = await whatIf(
    rule,
    new TopicHistory({ kafka: kafka(), topic: n.events, logger, maxEvents: 20 }),
  );
  assert.equal(capped.history.events, 20);
  assert.equal(capped.history.capped, true);
  assert.equal(capped.history.max_events, 20);
  assert.deepEqual(
    capped.report.episodes.map((e) => e.group).sort(),
    [...names(0, 10).slice(5), ...names(1, 20).slice(10), ...names(2, 10).slice(5)].sort(),
  );

  const longer = await whatIf(rule, new TopicHistory({ kafka: kafka(), topic: n.events, logger }), {
    windowMs: 4 * 3_600_000,
  });
  assert.equal(longer.history.events, 42);
  assert.deepEqual(await groups(), before);
});
