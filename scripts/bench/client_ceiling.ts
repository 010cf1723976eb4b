/**
 * A Kafka client's own ceiling under Deno: one consumer-group member reads COUNT records of TOPIC
 * from the earliest offset and does nothing with them. `kafkajs` is configured as the service's
 * source is (1 MiB per partition, six partitions at once, TCP_NODELAY); `platformatic` is
 * @platformatic/kafka with the same fetch sizes, measured as the candidate replacement.
 *
 * Prints one JSON line (records/s and CPU over the records), then waits for SIGTERM so the caller
 * can read its peak RSS first.
 *
 * Usage: deno run --allow-net --allow-env --allow-read scripts/bench/client_ceiling.ts
 *          kafkajs|platformatic BOOTSTRAP TOPIC COUNT
 *
 * @module
 */
import process from "node:process";
import { Consumer, FetchIsolationLevels, MessagesStreamModes } from "@platformatic/kafka";
import { Kafka, logLevel } from "kafkajs";
import { print } from "../../src/log.ts";
import { noDelaySocketFactory } from "../../src/transport/kafka.ts";

const FETCH = { maxBytes: 10 * 1024 * 1024, maxBytesPerPartition: 1024 * 1024 };

export interface ClientRun {
  client: "kafkajs" | "platformatic";
  records: number;
  seconds: number;
  events_per_s: number;
  cpu_us_per_event: number;
}

class Meter {
  #count = 0;
  #t0 = 0;
  #cpu0 = 0;
  readonly done: Promise<{ records: number; seconds: number; cpuSeconds: number }>;
  #resolve!: (r: { records: number; seconds: number; cpuSeconds: number }) => void;

  constructor(readonly total: number) {
    this.done = new Promise((r) => this.#resolve = r);
  }

  add(n: number): void {
    if (this.#count === 0) {
      this.#t0 = performance.now();
      this.#cpu0 = cpu();
    }
    const before = this.#count;
    this.#count += n;
    if (before < this.total && this.#count >= this.total) {
      this.#resolve({
        records: this.#count,
        seconds: (performance.now() - this.#t0) / 1000,
        cpuSeconds: cpu() - this.#cpu0,
      });
    }
  }
}

function cpu(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
}

async function withKafkajs(bootstrap: string, topic: string, meter: Meter): Promise<() => Promise<void>> {
  const kafka = new Kafka({
    clientId: "bench-ceiling",
    brokers: [bootstrap],
    logLevel: logLevel.NOTHING,
    socketFactory: noDelaySocketFactory,
  });
  const consumer = kafka.consumer({
    groupId: `bench-ceiling-kafkajs-${crypto.randomUUID()}`,
    maxBytes: FETCH.maxBytes,
    maxBytesPerPartition: FETCH.maxBytesPerPartition,
    maxWaitTimeInMs: 100,
  });
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    partitionsConsumedConcurrently: 6,
    eachBatch: ({ batch }) => {
      meter.add(batch.messages.length);
      return Promise.resolve();
    },
  });
  return () => consumer.disconnect();
}

async function withPlatformatic(
  bootstrap: string,
  topic: string,
  meter: Meter,
): Promise<() => Promise<void>> {
  const consumer = new Consumer({
    clientId: "bench-ceiling",
    bootstrapBrokers: [bootstrap],
    groupId: `bench-ceiling-platformatic-${crypto.randomUUID()}`,
    ...FETCH,
    minBytes: 1,
    maxWaitTime: 100,
    // Its default fetch size per partition equals maxBytes (50 MiB): three times slower here.
    isolationLevel: FetchIsolationLevels.READ_COMMITTED,
    autocommit: false,
    highWaterMark: 1024,
  });
  const stream = await consumer.consume({ topics: [topic], mode: MessagesStreamModes.EARLIEST });
  stream.on("data", () => meter.add(1));
  stream.on("error", () => {});
  return async () => {
    await stream.close().catch(() => {});
    await consumer.close(true).catch(() => {});
  };
}

if (import.meta.main) {
  const [client, bootstrap, topic, count] = Deno.args;
  if (
    (client !== "kafkajs" && client !== "platformatic") || bootstrap === undefined || topic === undefined ||
    !(Number(count) > 0)
  ) {
    throw new TypeError("Usage: client_ceiling.ts kafkajs|platformatic BOOTSTRAP TOPIC COUNT");
  }
  const meter = new Meter(Number(count));
  const stop = await (client === "kafkajs" ? withKafkajs : withPlatformatic)(bootstrap, topic, meter);
  const r = await meter.done;
  const run: ClientRun = {
    client,
    records: r.records,
    seconds: r.seconds,
    events_per_s: r.records / r.seconds,
    cpu_us_per_event: (r.cpuSeconds / r.records) * 1e6,
  };
  print(JSON.stringify(run));
  Deno.addSignalListener("SIGTERM", () => {
    stop().finally(() => Deno.exit(0));
    setTimeout(() => Deno.exit(0), 5000);
  });
}
