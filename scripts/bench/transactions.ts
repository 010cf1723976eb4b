/**
 * What one Kafka transaction costs, kafkajs as the service uses it: `producers` transactional producers
 * side by side (one per partition of a new topic, like the exactly-once engine's), each committing
 * `count` transactions of one record in a loop, with or without the consumer offset (`--offsets`).
 * `--spread K` gives each producer K partitions, a transaction writing one record and (with
 * `--offsets`) one offset to each: `--producers 2 --spread 3` is what one producer per worker
 * (KIP-447) would commit for six partitions, against `--producers 6` today. Prints each step's p50/p99 and the client's and the broker's CPU (the broker's from /proc, when its
 * pid is given). A quick measurement beside `deno task bench`, not one of its rows.
 *
 *     deno run --allow-net --allow-read --allow-env --allow-run=cat scripts/bench/transactions.ts \
 *       --brokers 127.0.0.1:9092 --producers 6 --count 200 [--spread 1] [--offsets] [--broker-pid PID]
 *
 * @module
 */
import { parseArgs } from "node:util";
import { Kafka, logLevel, Partitioners } from "kafkajs";
import { print } from "../../src/log.ts";
import { noDelaySocketFactory } from "../../src/transport/kafka.ts";
import { percentile } from "./measure.ts";
import { cpuSeconds } from "./proc.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    brokers: { type: "string", default: "127.0.0.1:9092" },
    producers: { type: "string", default: "6" },
    count: { type: "string", default: "200" },
    spread: { type: "string", default: "1" },
    offsets: { type: "boolean", default: false },
    "broker-pid": { type: "string" },
  },
  strict: true,
});
const producers = Number(values.producers);
const count = Number(values.count);
const spread = Number(values.spread);
/** The first transactions of each producer are left out (connections, the client's JIT). */
const WARMUP = Math.min(20, Math.floor(count / 5));

const kafka = new Kafka({
  clientId: "bench-transactions",
  brokers: values.brokers.split(","),
  logLevel: logLevel.NOTHING,
  socketFactory: noDelaySocketFactory,
});
const admin = kafka.admin();
await admin.connect();
const topic = `bench-transactions-${Date.now().toString(36)}`;
await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: producers * spread }] });

const steps: Record<"send" | "offsets" | "commit" | "total", number[]> = {
  send: [],
  offsets: [],
  commit: [],
  total: [],
};
const run = async (producerIndex: number) => {
  const partitions = Array.from({ length: spread }, (_, k) => producerIndex * spread + k);
  // The engine's producer settings (src/transport/transactional.ts).
  const producer = kafka.producer({
    transactionalId: `${topic}-${producerIndex}`,
    idempotent: true,
    maxInFlightRequests: 1,
    retry: { initialRetryTime: 1, maxRetryTime: 5000, retries: 17 },
    createPartitioner: Partitioners.DefaultPartitioner,
  });
  await producer.connect();
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    const txn = await producer.transaction();
    await txn.sendBatch({
      acks: -1,
      topicMessages: [{
        topic,
        messages: partitions.map((partition) => ({ key: "k", value: "v", partition })),
      }],
    });
    const t1 = performance.now();
    if (values.offsets) {
      await txn.sendOffsets({
        consumerGroupId: `${topic}.group`,
        topics: [{ topic, partitions: partitions.map((partition) => ({ partition, offset: String(i) })) }],
      });
    }
    const t2 = performance.now();
    await txn.commit();
    const t3 = performance.now();
    if (i < WARMUP) continue;
    steps.send.push(t1 - t0);
    steps.offsets.push(t2 - t1);
    steps.commit.push(t3 - t2);
    steps.total.push(t3 - t0);
  }
  await producer.disconnect();
};

const brokerPid = values["broker-pid"];
const brokerBefore = brokerPid === undefined ? 0 : await cpuSeconds(Number(brokerPid));
const clientBefore = await cpuSeconds(Deno.pid);
const began = performance.now();
await Promise.all(Array.from({ length: producers }, (_, p) => run(p)));
const seconds = (performance.now() - began) / 1000;
const transactions = producers * count;
print(
  `${transactions} transactions (${producers} producers × ${count}${
    spread > 1 ? `, ${spread} partitions each` : ""
  }${values.offsets ? ", with offsets" : ""}) ` +
    `in ${seconds.toFixed(1)} s: ${Math.round(transactions / seconds)} a second`,
);
for (const [step, xs] of Object.entries(steps)) {
  const sorted = [...xs].sort((a, b) => a - b);
  print(
    `  ${step}: p50 ${percentile(sorted, 50).toFixed(1)} ms, p99 ${percentile(sorted, 99).toFixed(1)} ms`,
  );
}
const clientCpu = (await cpuSeconds(Deno.pid)) - clientBefore;
print(
  `  client CPU: ${(clientCpu * 1000 / transactions).toFixed(2)} ms a transaction, ` +
    `${(clientCpu * 1000 / transactions / spread).toFixed(2)} ms a partition`,
);
if (brokerPid !== undefined) {
  const brokerCpu = (await cpuSeconds(Number(brokerPid))) - brokerBefore;
  print(
    `  broker CPU: ${(brokerCpu * 1000 / transactions).toFixed(2)} ms a transaction, ` +
      `${(brokerCpu * 1000 / transactions / spread).toFixed(2)} ms a partition`,
  );
}
await admin.deleteTopics({ topics: [topic] }).catch(() => {});
await admin.disconnect();
