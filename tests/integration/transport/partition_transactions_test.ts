/** PartitionTransactions against the real broker: one producer per partition, and a bound on them. */
import assert from "node:assert/strict";
import { createLogger } from "../../../src/log.ts";
import {
  partitionTransactionalId,
  PartitionTransactions,
} from "../../../src/transport/partition_transactions.ts";
import { createTopics, kafka, readTopic, uniqueNames, withAdmin } from "../../helpers/kafka.ts";

const logger = createLogger({ level: "error", sink: { write: () => {}, pretty: false } });

Deno.test("partitionTransactionalId() names the group, the topic and the partition, nothing of the process", () => {
  assert.equal(partitionTransactionalId("engine", "sensor-events", 3), "engine-sensor-events-3");
});

Deno.test("PartitionTransactions commits each partition's records and offset in its own transaction, with at most maxOpen producers open", async () => {
  const n = uniqueNames("part-txn");
  await createTopics([n.events, n.alerts], 4);
  const failures: number[] = [];
  const txns = new PartitionTransactions(kafka(), {
    groupId: n.group,
    topic: n.events,
    logger,
    onFailure: (p) => failures.push(p),
    maxOpen: 2,
  });
  try {
    for (const p of [0, 1, 2, 3, 0]) {
      await txns.commit(p, [{ topic: n.alerts, key: `k${p}`, value: `from ${p}` }], [
        { topic: n.events, partitions: [{ partition: p, offset: String(p + 10) }] },
      ]);
      assert.ok(txns.partitions.length <= 2, `${txns.partitions.length} producers open`);
    }
    assert.deepEqual(txns.partitions.sort(), [0, 3]);
    assert.equal(txns.transactions, 5);
    assert.deepEqual(failures, []);
    const offsets = await withAdmin(async (admin) => {
      const [t] = await admin.fetchOffsets({ groupId: n.group, topics: [n.events] });
      return t!.partitions.sort((a, b) => a.partition - b.partition).map((p) => p.offset);
    });
    assert.deepEqual(offsets, ["10", "11", "12", "13"]);
    const values = (await readTopic(n.alerts, (v) => v.length >= 5, 20_000)).map((r) => r.value).sort();
    assert.deepEqual(values, ["from 0", "from 0", "from 1", "from 2", "from 3"]);
    // A partition that moved away closes its producer.
    await txns.retain([3]);
    assert.deepEqual(txns.partitions, [3]);
  } finally {
    await txns.closeAll();
  }
});
