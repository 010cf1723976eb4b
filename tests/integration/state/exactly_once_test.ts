/**
 * The exactly-once engine against the real broker, when a transaction fails under it.
 */
import assert from "node:assert/strict";
import { createLogger } from "../../../src/log.ts";
import { Pipeline } from "../../../src/pipeline.ts";
import { KafkaSource } from "../../../src/source/kafka.ts";
import { RuleRegistry } from "../../../src/rules/registry.ts";
import { exactlyOnceEngine } from "../../../src/state/exactly_once.ts";
import { createKafka, KafkaOutput, kafkaSettingsFromEnv } from "../../../src/transport/kafka.ts";
import { partitionTransactionalId } from "../../../src/transport/partition_transactions.ts";
import { TransactionalOutput } from "../../../src/transport/transactional.ts";
import {
  brokers,
  createCompactedTopic,
  createTopics,
  groupLag,
  kafka,
  produce,
  recreateTopic,
  uniqueNames,
  waitFor,
  withAdmin,
} from "../../helpers/kafka.ts";
import { event } from "../../helpers/events.ts";

/** The topics of one test: events, alerts and DLQ with `partitions` partitions, and a compacted changelog. */
async function topics(prefix: string, partitions = 1) {
  const n = uniqueNames(prefix);
  const stateTopic = `${n.group}-state`;
  await createTopics([n.events, n.alerts, n.dlq], partitions);
  await createCompactedTopic(stateTopic, partitions);
  return { ...n, stateTopic };
}

/** An exactly-once engine of the shipped rules on `n`'s topics. */
async function engine(
  n: Awaited<ReturnType<typeof topics>>,
  offsetCommitIntervalMs?: number,
  rulesDir = "rules",
  more: { lines?: string[]; acceptEmptyState?: boolean; refusedRecheckMs?: number } = {},
) {
  const registry = new RuleRegistry(rulesDir);
  await registry.reload();
  const logger = createLogger({
    level: "error",
    sink: { write: (line: string) => more.lines?.push(line), pretty: false },
  });
  const client = createKafka(kafkaSettingsFromEnv(brokers(), {}), logger, { retries: 5 });
  return exactlyOnceEngine({
    kafka: client,
    logger,
    groupId: n.group,
    eventsTopic: n.events,
    stateTopic: n.stateTopic,
    output: new KafkaOutput(client),
    ...(more.acceptEmptyState ? { acceptEmptyState: true } : {}),
    ...(more.refusedRecheckMs === undefined ? {} : { refusedRecheckMs: more.refusedRecheckMs }),
    // A test that sets the interval hands offsets in only at that interval, never when idle.
    ...(offsetCommitIntervalMs === undefined
      ? {}
      : { offsetCommitIntervalMs, idleHandInMs: offsetCommitIntervalMs }),
    pipeline: (parts) =>
      new Pipeline({
        ruleSet: () => registry.ruleSet,
        topics: { alerts: n.alerts, dlq: n.dlq },
        logger,
        ...parts,
      }),
    source: (parts) =>
      new KafkaSource({
        kafka: client,
        groupId: n.group,
        topic: n.events,
        logger,
        sessionTimeoutMs: 6000,
        ...parts,
      }),
  });
}

/** Ten events of ten new sensors, ids from `from`. */
const events = (prefix: string, from: number) =>
  Array.from({ length: 10 }, (_, i) => {
    const e = event({ event_id: `${prefix}-${from + i}`, sensor_id: `s-${from + i}`, value: 21 });
    return { key: `temperature:${e.sensor_id}`, value: JSON.stringify(e) };
  });

Deno.test("exactly-once engine: a batch whose transaction failed is counted once, when it is processed again", async () => {
  const n = await topics("eos-counts");
  const logger = createLogger({ level: "error", sink: { write: () => {}, pretty: false } });
  const eos = await engine(n);
  try {
    await eos.start();
    await produce(n.events, events("eos-count", 0));
    await waitFor("the first 10 events", () => eos.pipeline.counters.events >= 10, 60_000);
    // Another producer takes the partition's transactional id over: the engine's next transaction
    // fails, its batch is read and processed again by a new producer.
    const fencer = new TransactionalOutput(kafka(), {
      transactionalId: partitionTransactionalId(n.group, n.events, 0),
      groupId: n.group,
      logger,
      onFailure: () => {},
    });
    // Connecting is what fences (InitProducerId); a send of its own could be fenced in turn by the
    // engine's next producer, which does not wait for the fencer to be done.
    await fencer.connect();
    await fencer.close();
    await produce(n.events, events("eos-count", 10));
    await waitFor("every event committed", async () => await groupLag(n.group, n.events) === 0, 90_000);
    assert.equal(eos.pipeline.counters.events, 20);
    assert.equal(eos.pipeline.counters.accepted, 20);
  } finally {
    await eos.stop();
  }
});

Deno.test("exactly-once engine: after transactions that handed in no offset, the next owner skips what the state holds and hands the offset in", async () => {
  const n = await topics("eos-resume");
  // Only a partition's first transaction hands the consumer offset in.
  const first = await engine(n, 3_600_000);
  let second: Awaited<ReturnType<typeof engine>> | null = null;
  try {
    await first.start();
    await produce(n.events, events("eos-resume", 0));
    await waitFor("the group's offset at 10", async () => await groupLag(n.group, n.events) === 0, 60_000);
    await produce(n.events, events("eos-resume", 10));
    await waitFor("20 events in the state", () => first.pipeline.counters.events >= 20, 60_000);
    await first.settled();
    assert.equal(await groupLag(n.group, n.events), 10, "the second batch handed its offset in");
    // The owner goes away without handing in its offset (as a crash would): its consumer leaves.
    await first.source.consumer.disconnect();
    second = await engine(n);
    await second.start();
    await waitFor("the partition assigned", () => second!.transactions.partitions.length === 1, 60_000);
    await second.restored();
    await waitFor("the partition restored", () => second!.pipeline.counters.events === 0, 60_000);
    await second.flush();
    await waitFor("the group's offset at 20", async () => await groupLag(n.group, n.events) === 0, 60_000);
    assert.equal(second.pipeline.counters.events, 0, "records in the state were processed again");
  } finally {
    await second?.stop();
    await first.stop().catch(() => {});
  }
});

/** Writes `messages` to partition `partition` of `topic`, whatever their keys. */
async function produceTo(topic: string, partition: number, messages: { key: string; value: string }[]) {
  const producer = kafka().producer();
  await producer.connect();
  try {
    await producer.send({ topic, acks: -1, messages: messages.map((m) => ({ ...m, partition })) });
  } finally {
    await producer.disconnect();
  }
}

/** The group's committed offset of `partition` (0 when none). */
async function committedOffset(group: string, topic: string, partition: number): Promise<number> {
  return await withAdmin(async (admin) => {
    const [t] = await admin.fetchOffsets({ groupId: group, topics: [topic] });
    const offset = t?.partitions.find((p) => p.partition === partition)?.offset ?? "-1";
    return offset === "-1" ? 0 : Number(offset);
  });
}

Deno.test("exactly-once engine: a partition kept through a rebalance, its offset not handed in yet, is not processed again", async () => {
  const n = await topics("eos-kept", 2);
  // Only a partition's first transaction hands the consumer offset in.
  const eos = await engine(n, 3_600_000);
  const other = kafka().consumer({ groupId: n.group, sessionTimeout: 6000 });
  try {
    await eos.start();
    await produceTo(n.events, 0, events("eos-kept", 0));
    await produceTo(n.events, 1, events("eos-kept", 10));
    await waitFor(
      "the group's offsets at 10 and 10",
      async () => await groupLag(n.group, n.events) === 0,
      60_000,
    );
    await produceTo(n.events, 0, events("eos-kept", 20));
    await produceTo(n.events, 1, events("eos-kept", 30));
    await waitFor("40 events in the state", () => eos.pipeline.counters.events >= 40, 60_000);
    await eos.settled();
    assert.equal(await groupLag(n.group, n.events), 20, "the second batches handed their offsets in");
    // A second member joins (it processes and commits nothing): the engine keeps one partition,
    // whose records 10-19 are in its state and in committed transactions, the group's offset at 10.
    await other.connect();
    await other.subscribe({ topics: [n.events], fromBeginning: true });
    await other.run({ autoCommit: false, eachBatch: async () => {} });
    await waitFor("one partition left to the engine", () => eos.source.assigned.length === 1, 60_000);
    const kept = eos.source.assigned[0]!.partition;
    await produceTo(n.events, kept, events("eos-kept", 40));
    await eos.flush();
    await waitFor(
      "the kept partition's offset at 30",
      async () => {
        await eos.flush();
        return await committedOffset(n.group, n.events, kept) === 30;
      },
      60_000,
    );
    await eos.settled();
    assert.equal(eos.pipeline.counters.duplicates, 0, "records of the kept partition were read again");
    assert.equal(eos.pipeline.counters.events, 50, "records of the kept partition were processed again");
  } finally {
    await other.disconnect();
    await eos.stop();
  }
});

Deno.test("exactly-once engine: a quiet partition whose clock-driven transaction failed gets its state back without a new record, the alert counted once", async () => {
  const n = await topics("eos-quiet");
  await Deno.mkdir("tests/artifacts", { recursive: true });
  const rulesDir = await Deno.makeTempDir({ dir: "tests/artifacts", prefix: "rules-" });
  await Deno.writeTextFile(
    `${rulesDir}/rules.yaml`,
    "rules:\n  - id: silent\n    sensor_type: temperature\n    absent_for: 2s\n    priority: normal\n",
  );
  const logger = createLogger({ level: "error", sink: { write: () => {}, pretty: false } });
  const eos = await engine(n, undefined, rulesDir);
  const reader = kafka().consumer({ groupId: `reader-${crypto.randomUUID()}`, maxWaitTimeInMs: 100 });
  try {
    const seen: string[] = [];
    await reader.connect();
    await reader.subscribe({ topics: [n.alerts], fromBeginning: true });
    await reader.run({
      eachMessage: ({ message }) => {
        seen.push((JSON.parse(message.value!.toString()) as { rule_id: string }).rule_id);
        return Promise.resolve();
      },
    });
    await eos.start();
    await produce(n.events, events("eos-quiet", 0).slice(0, 1));
    await waitFor("the event committed", async () => await groupLag(n.group, n.events) === 0, 60_000);
    await eos.settled();
    // The partition's transactional id is taken over: the next transaction, the tick that reports the
    // silent sensor, fails. No record comes to the partition from here on.
    const fencer = new TransactionalOutput(kafka(), {
      transactionalId: partitionTransactionalId(n.group, n.events, 0),
      groupId: n.group,
      logger,
      onFailure: () => {},
    });
    await fencer.connect();
    await fencer.close();
    await waitFor("a tick's transaction failed", () => eos.flush().then(() => false, () => true), 60_000);
    // The deadman alert the failed transaction took back is reported by a later tick.
    await waitFor("the silent sensor reported", async () => {
      await eos.flush().catch(() => {});
      return seen.includes("silent");
    }, 60_000);
    await eos.flush();
    // The failed tick's count is taken back, as a failed batch's is.
    assert.equal(eos.pipeline.counters.alerts, seen.filter((r) => r === "silent").length);
  } finally {
    await reader.disconnect();
    await eos.stop();
    await Deno.remove(rulesDir, { recursive: true }).catch(() => {});
  }
});

Deno.test("exactly-once engine: a changelog created again under the group's offsets is not restored from, unless empty state is accepted", async () => {
  const n = await topics("eos-changelog-again");
  const first = await engine(n);
  try {
    await first.start();
    await produce(n.events, events("eos-changelog-again", 0));
    await waitFor("the group's offset at 10", async () => await groupLag(n.group, n.events) === 0, 60_000);
  } finally {
    await first.stop();
  }
  // Deleted and created again while an engine runs (a member that joins, a worker restarted, a
  // transaction that failed all restore from it): none of the state is there.
  await recreateTopic(n.stateTopic, 1, { compacted: true });
  await produce(n.events, events("eos-changelog-again", 10));
  const lines: string[] = [];
  const second = await engine(n, undefined, "rules", { lines, refusedRecheckMs: 2_000 });
  const refusals = () =>
    lines.filter((l) => l.includes("deleted and created again while the engine ran")).length;
  try {
    await second.start();
    await waitFor("the refusal", () => refusals() > 0, 60_000);
    // Held back and looked at again every 2 s, said once: each batch fetched again at once, and an
    // error line each time, was 6 refusals in 10 s.
    await new Promise((r) => setTimeout(r, 7_000));
    assert.equal(refusals(), 1, lines.join("\n"));
    // Not thrown at kafkajs: each throw counted towards a crash of its fetch loop and a rejoin.
    assert.equal(lines.filter((l) => l.includes("Error when calling eachBatch")).length, 0, lines.join("\n"));
    assert.match(second.source.held.get(0) ?? "", /deleted and created again/);
    assert.equal(second.pipeline.counters.events, 0, "records processed on state that is gone");
  } finally {
    await second.stop();
  }
  const third = await engine(n, undefined, "rules", { acceptEmptyState: true });
  try {
    await third.start();
    await waitFor("the new records processed", () => third.pipeline.counters.events >= 10, 60_000);
  } finally {
    await third.stop();
  }
});

Deno.test("exactly-once engine: partitions held back for a changelog created again move with a rebalance: each member holds only what it owns, none left held", async () => {
  const n = await topics("eos-held-rebalance", 2);
  const first = await engine(n);
  try {
    await first.start();
    // Records on both partitions: each gets an offset that went with the old changelog.
    await produce(n.events, [...events("eos-held-rebalance", 0), ...events("eos-held-rebalance", 10)]);
    await waitFor("the group's offsets", async () => await groupLag(n.group, n.events) === 0, 60_000);
  } finally {
    await first.stop();
  }
  await recreateTopic(n.stateTopic, 2, { compacted: true });
  await produce(n.events, events("eos-held-rebalance", 20));
  const owned = (e: Awaited<ReturnType<typeof engine>>) =>
    e.source.assigned.filter((a) => a.topic === n.events).map((a) => a.partition).sort();
  const heldOf = (e: Awaited<ReturnType<typeof engine>>) => [...e.source.held.keys()].sort();
  const a = await engine(n, undefined, "rules", { refusedRecheckMs: 1_000 });
  let b: Awaited<ReturnType<typeof engine>> | null = null;
  try {
    await a.start();
    await waitFor("the first member to hold both partitions", () => heldOf(a).length === 2, 60_000);
    // A second member joins while both are held and looked at again every second.
    b = await engine(n, undefined, "rules", { refusedRecheckMs: 1_000 });
    await b.start();
    const bb = b;
    await waitFor("the partitions split between the two, each holding its own", () => {
      const [ma, mb] = [owned(a), owned(bb)];
      return ma.length === 1 && mb.length === 1 &&
        JSON.stringify(heldOf(a)) === JSON.stringify(ma) && JSON.stringify(heldOf(bb)) === JSON.stringify(mb);
    }, 60_000);
    // The second leaves: the first owns both again and holds both, none processed on state that is gone.
    await b.stop();
    b = null;
    await waitFor("the first member to hold both again", () => {
      return owned(a).length === 2 && JSON.stringify(heldOf(a)) === "[0,1]";
    }, 60_000);
    assert.equal(a.pipeline.counters.events, 0, "records processed on state that is gone");
  } finally {
    await b?.stop();
    await a.stop();
  }
  // Told to accept the empty state, one member takes both and nothing is held.
  const c = await engine(n, undefined, "rules", { acceptEmptyState: true });
  try {
    await c.start();
    await waitFor("the new records processed", () => c.pipeline.counters.events >= 10, 60_000);
    assert.deepEqual(heldOf(c), []);
  } finally {
    await c.stop();
  }
});
