/**
 * The Kafka transport against the real broker: the group produce keeps call order, the group commit
 * puts a fetch's batches in one transaction, and the source commits a batch only once its output is
 * durable.
 */
import assert from "node:assert/strict";
import { createLogger } from "../../../src/log.ts";
import { type ConsumerOptions, KafkaSource } from "../../../src/source/kafka.ts";
import { KafkaOutput } from "../../../src/transport/kafka.ts";
import { TransactionalOutput } from "../../../src/transport/transactional.ts";
import {
  createTopics,
  groupLag,
  kafka,
  produce,
  readTopic,
  uniqueNames,
  waitFor,
  withAdmin,
} from "../../helpers/kafka.ts";

const logger = createLogger({ level: "error" });

async function committedOffset(group: string, topic: string, partition = 0): Promise<number> {
  return await withAdmin(async (admin) => {
    const [t] = await admin.fetchOffsets({ groupId: group, topics: [topic] });
    return Number(t?.partitions.find((p) => p.partition === partition)?.offset ?? -1);
  });
}

Deno.test("KafkaOutput: concurrent sends go out grouped, in the order they were called", async () => {
  const n = uniqueNames("output-order");
  await createTopics([n.alerts], 1);
  const output = new KafkaOutput(kafka());
  try {
    await output.connect();
    const sends = Array.from(
      { length: 50 },
      (_, i) => output.send([{ topic: n.alerts, key: "k", value: String(i) }]),
    );
    await Promise.all(sends);
    assert.ok(output.requests < 50, `50 sends took ${output.requests} produce requests`);
    const read = await readTopic(n.alerts, (v) => v.length >= 50);
    assert.deepEqual(read.map((r) => Number(r.value)), Array.from({ length: 50 }, (_, i) => i));
  } finally {
    await output.close();
  }
});

Deno.test("KafkaOutput: a send after close is refused, not lost silently", async () => {
  const output = new KafkaOutput(kafka());
  await output.close();
  await assert.rejects(output.send([{ topic: "x", key: null, value: "v" }]), /closed/);
});

Deno.test("TransactionalOutput: commits issued together share one transaction with their offsets", async () => {
  const n = uniqueNames("txn-group");
  await createTopics([n.events, n.alerts], 6);
  const output = new TransactionalOutput(kafka(), {
    transactionalId: `${n.group}-t`,
    groupId: n.group,
    logger,
    onFailure: () => {},
  });
  try {
    await output.connect();
    const before = output.transactions;
    await Promise.all(Array.from({ length: 6 }, (_, p) =>
      output.commit(
        [{ topic: n.alerts, key: `k${p}`, value: `v${p}` }],
        [{ topic: n.events, partitions: [{ partition: p, offset: String(10 + p) }] }],
      )));
    assert.equal(output.transactions - before, 1);
    const read = await readTopic(n.alerts, (v) => v.length >= 6);
    assert.deepEqual(read.map((r) => r.value).sort(), ["v0", "v1", "v2", "v3", "v4", "v5"]);
    for (let p = 0; p < 6; p++) assert.equal(await committedOffset(n.group, n.events, p), 10 + p);
  } finally {
    await output.close();
  }
});

/**
 * A one-partition topic holding `count` records, and a source on it whose batches become durable
 * when `durable()` resolves.
 */
async function sourceWith(
  prefix: string,
  count: number,
  durable: () => Promise<void>,
  opts: Partial<ConsumerOptions> = {},
) {
  const n = uniqueNames(prefix);
  await createTopics([n.events], 1);
  await produce(n.events, Array.from({ length: count }, (_, i) => ({ key: "k", value: String(i) })));
  const seen = { records: 0, batches: 0 };
  const source = new KafkaSource({
    kafka: kafka(),
    groupId: n.group,
    topic: n.events,
    logger,
    commitIntervalMs: 50,
    ...opts,
    handle: (records, ctx) => {
      seen.records += records.length;
      seen.batches++;
      ctx.commitAfter(durable());
      return Promise.resolve();
    },
  });
  return { n, source, seen };
}

Deno.test("KafkaSource: a batch's offset is committed only once its output is durable", async () => {
  let release!: () => void;
  const durable = new Promise<void>((r) => release = r);
  const { n, source, seen } = await sourceWith("source-durable", 20, () => durable);
  try {
    await source.start();
    await waitFor("the batch", () => seen.records >= 20);
    // Several commit intervals pass: the handler returned, but its output is not durable yet.
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(await committedOffset(n.group, n.events), -1);
    release();
    await waitFor("the commit", async () => await groupLag(n.group, n.events) === 0, 10_000);
  } finally {
    release();
    await source.stop();
  }
});

Deno.test("KafkaSource: after a failed output the partition's offset stays before the failed batch", async () => {
  const { n, source, seen } = await sourceWith(
    "source-failed",
    10,
    () => Promise.reject(new Error("broker refused")),
  );
  try {
    await source.start();
    await waitFor("the batch", () => seen.batches >= 1);
    await produce(n.events, Array.from({ length: 10 }, (_, i) => ({ key: "k", value: String(10 + i) })));
    await new Promise((r) => setTimeout(r, 800));
    assert.equal(await committedOffset(n.group, n.events), -1);
  } finally {
    await source.stop();
  }
  // Stopping hands in nothing past the failure either.
  assert.equal(await committedOffset(n.group, n.events), -1);
});

Deno.test("KafkaSource: stop commits what is durable before leaving the group", async () => {
  const { n, source, seen } = await sourceWith(
    "source-stop",
    30,
    () => new Promise((r) => setTimeout(r, 100)),
    // Longer than the test: only stop() can have committed.
    { commitIntervalMs: 60_000 },
  );
  await source.start();
  await waitFor("the records", () => seen.records >= 30);
  await source.stop();
  assert.equal(await committedOffset(n.group, n.events), 30);
});

Deno.test("KafkaSource: stop does not hang on an output that never completes, and commits nothing for it", async () => {
  const { n, source, seen } = await sourceWith("source-stuck", 5, () => new Promise(() => {}), {
    stopGraceMs: 300,
  });
  await source.start();
  await waitFor("the records", () => seen.records >= 5);
  const began = Date.now();
  await source.stop();
  assert.ok(Date.now() - began < 10_000, `stop took ${Date.now() - began} ms`);
  assert.equal(await committedOffset(n.group, n.events), -1);
});
