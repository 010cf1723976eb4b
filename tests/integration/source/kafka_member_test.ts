/**
 * A member the group went on without (it missed heartbeats for a session timeout while a batch ran)
 * must not commit that batch: its partitions may be another member's already, and the broker takes
 * a transactional offset commit from kafkajs without checking the member's generation.
 */
import assert from "node:assert/strict";
import { createLogger } from "../../../src/log.ts";
import { KafkaSource } from "../../../src/source/kafka.ts";
import { createKafka, kafkaSettingsFromEnv } from "../../../src/transport/kafka.ts";
import { TransactionalOutput } from "../../../src/transport/transactional.ts";
import {
  brokers,
  createTopics,
  kafka,
  produce,
  readTopic,
  uniqueNames,
  withAdmin,
} from "../../helpers/kafka.ts";

Deno.test("KafkaSource.confirmMember() rejects once the group went on without a member stuck in a batch, and its transaction commits nothing", async () => {
  const n = uniqueNames("evicted");
  await createTopics([n.events, n.alerts], 1);
  const logger = createLogger({ level: "error", sink: { write: () => {}, pretty: false } });
  const output = new TransactionalOutput(createKafka(kafkaSettingsFromEnv(brokers(), {}), logger), {
    transactionalId: `${n.group}-a`,
    groupId: n.group,
    logger,
    onFailure: () => {},
    beforeCommit: () => source.confirmMember(),
  });
  let release!: () => void;
  const gate = new Promise<void>((r) => release = r);
  let entered!: () => void;
  const inBatch = new Promise<void>((r) => entered = r);
  let settle!: (outcome: unknown) => void;
  /** The commit's error, or null when it committed. */
  const outcome = new Promise<unknown>((r) => settle = r);
  let handled = false;
  const source: KafkaSource = new KafkaSource({
    kafka: createKafka(kafkaSettingsFromEnv(brokers(), {}), logger),
    groupId: n.group,
    topic: n.events,
    logger,
    autoCommit: false,
    // The broker's smallest session timeout (group.min.session.timeout.ms).
    sessionTimeoutMs: 6000,
    handle: async (_records, ctx) => {
      if (handled) return;
      handled = true;
      entered();
      // Stuck (a slow batch on a loaded machine): no heartbeat goes out meanwhile.
      await gate;
      const committed = output.commit(
        [{ topic: n.alerts, key: "k", value: "from the evicted member" }],
        [{
          topic: n.events,
          partitions: [{ partition: 0, offset: (BigInt(ctx.lastOffset) + 1n).toString() }],
        }],
      );
      settle(await committed.then(() => null, (err) => err));
    },
  });
  const other = kafka().consumer({ groupId: n.group, sessionTimeout: 30_000, maxWaitTimeInMs: 100 });
  try {
    await output.connect();
    await source.start();
    await produce(n.events, [{ key: "k", value: "e1" }]);
    await inBatch;
    // Another member joins; the stuck one neither heartbeats nor rejoins, so after its session
    // timeout the group gives every partition to the newcomer.
    await other.connect();
    await other.subscribe({ topics: [n.events], fromBeginning: true });
    let joined!: () => void;
    const otherJoined = new Promise<void>((r) => joined = r);
    other.on(other.events.GROUP_JOIN, (e) => {
      const assigned = (e.payload.memberAssignment as Record<string, number[]>)[n.events] ?? [];
      if (assigned.includes(0)) joined();
    });
    await other.run({ autoCommit: false, eachBatch: () => Promise.resolve() });
    await otherJoined;
    release();
    const err = await outcome as Error & { type?: string } | null;
    assert.ok(err !== null, "the stuck member's transaction committed");
    assert.match(String(err.type), /UNKNOWN_MEMBER_ID|ILLEGAL_GENERATION|REBALANCE_IN_PROGRESS/);
    // Nothing of the transaction is visible: a record written after it is the only one.
    await produce(n.alerts, [{ key: "k", value: "marker" }]);
    const alerts = await readTopic(n.alerts, (v) => v.includes("marker"), 30_000);
    assert.deepEqual(alerts.map((a) => a.value), ["marker"]);
    const offsets = await withAdmin((admin) => admin.fetchOffsets({ groupId: n.group, topics: [n.events] }));
    assert.equal(offsets[0]!.partitions[0]!.offset, "-1", "the stuck member committed no offset");
  } finally {
    release();
    await other.disconnect();
    await source.stop();
    await output.close();
  }
});
