/** Consumer lag read from the real broker, against offsets the test committed itself. */
import assert from "node:assert/strict";
import { Partitioners } from "kafkajs";
import { fetchLag } from "../../../src/http/lag.ts";
import { createTopics, kafka, uniqueNames, withAdmin } from "../../helpers/kafka.ts";

Deno.test("fetchLag() is end offset minus committed offset on every partition", async () => {
  const n = uniqueNames("lag");
  await createTopics([n.events], 3);
  const producer = kafka().producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  try {
    // 10, 20 and 30 records on partitions 0, 1 and 2.
    for (const partition of [0, 1, 2]) {
      const messages = Array.from(
        { length: (partition + 1) * 10 },
        (_, i) => ({ partition, value: `m${i}` }),
      );
      await producer.send({ topic: n.events, acks: -1, messages });
    }
  } finally {
    await producer.disconnect();
  }
  const lag = await withAdmin(async (admin) => {
    const before = await fetchLag(admin, n.group, n.events);
    // A group with no commit yet starts at the oldest record: everything is lag.
    assert.deepEqual(before.map((l) => l.lag), [10, 20, 30]);
    await admin.setOffsets({
      groupId: n.group,
      topic: n.events,
      partitions: [{ partition: 0, offset: "4" }, { partition: 1, offset: "20" }, {
        partition: 2,
        offset: "0",
      }],
    });
    return await fetchLag(admin, n.group, n.events);
  });
  assert.deepEqual(lag, [
    { group: n.group, topic: n.events, partition: 0, lag: 6 },
    { group: n.group, topic: n.events, partition: 1, lag: 0 },
    { group: n.group, topic: n.events, partition: 2, lag: 30 },
  ]);
});
