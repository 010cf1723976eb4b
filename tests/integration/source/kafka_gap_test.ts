/**
 * Records deleted before the group read them (retention, DeleteRecords), against the real broker.
 */
import assert from "node:assert/strict";
import { createLogger, type Logger } from "../../../src/log.ts";
import { type ConsumerOptions, KafkaSource, type OffsetGap } from "../../../src/source/kafka.ts";
import { createKafka, kafkaSettingsFromEnv } from "../../../src/transport/kafka.ts";
import {
  brokers,
  createTopics,
  groupLag,
  kafka,
  produce,
  uniqueNames,
  waitFor,
  withAdmin,
} from "../../helpers/kafka.ts";

Deno.test("KafkaSource reports records deleted before it read them: partition, from, to and count", async () => {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({
    level: "warn",
    sink: { write: (l) => lines.push(JSON.parse(l)), pretty: false },
  });
  // While the group is away, 20 more arrive and all but the last 5 are deleted (see `gapFixture`).
  const f = await gapFixture("deleted-unread", 1, 25, logger);
  const second = f.source("second");
  try {
    await second.start();
    await waitFor("the records left", () => f.read.length >= 5);
    assert.deepEqual(f.read, ["25", "26", "27", "28", "29"]);
    assert.deepEqual(f.gaps, [{ topic: f.n.events, partition: 0, from: "10", to: "24", records: 15 }]);
    assert.deepEqual(second.deletedUnread, new Map([[0, 15]]));
    const reported = lines.filter((l) => l.msg === "Records were deleted before they were read");
    assert.equal(reported.length, 1);
    assert.deepEqual([reported[0]!.partition, reported[0]!.from, reported[0]!.to, reported[0]!.records], [
      0,
      "10",
      "24",
      15,
    ]);
  } finally {
    await second.stop();
  }
});

Deno.test("KafkaSource reports records deleted ahead of it while it was busy with an earlier batch", async () => {
  const n = uniqueNames("deleted-ahead");
  await createTopics([n.events], 1);
  const logger = createLogger({ level: "error", sink: { write: () => {}, pretty: false } });
  const kafka = createKafka(kafkaSettingsFromEnv(brokers(), {}), logger);
  const gaps: OffsetGap[] = [];
  const read: string[] = [];
  let release!: () => void;
  const busy = new Promise<void>((r) => release = r);
  const msgs = (from: number, to: number) =>
    Array.from({ length: to - from }, (_, i) => ({ key: "k", value: String(from + i) }));
  await produce(n.events, msgs(0, 10));
  const source = new KafkaSource({
    kafka,
    groupId: n.group,
    topic: n.events,
    logger,
    handle: async (records) => {
      read.push(...records.map((r) => r.offset!));
      if (records[0]!.offset === "0") await busy;
    },
    onGap: (gap) => {
      gaps.push(gap);
      return Promise.resolve();
    },
  });
  try {
    await source.start();
    await waitFor("the first batch", () => read.length >= 10);
    await produce(n.events, msgs(10, 30));
    await withAdmin(async (admin) => {
      await admin.fetchTopicMetadata({ topics: [n.events] });
      await admin.deleteTopicRecords({ topic: n.events, partitions: [{ partition: 0, offset: "25" }] });
    });
    release();
    await waitFor("the records left", () => read.length >= 15);
    assert.deepEqual(read.slice(10), ["25", "26", "27", "28", "29"]);
    assert.deepEqual(gaps, [{ topic: n.events, partition: 0, from: "10", to: "24", records: 15 }]);
  } finally {
    release();
    await source.stop();
  }
});

/**
 * A group that read and committed records 0-9 of each of `partitions` partitions, then 20 more
 * written to each and those below `deleteBelow` deleted while no member ran. `source` makes members
 * of the group that collect what they read, the gaps they report and their joins.
 */
async function gapFixture(prefix: string, partitions: number, deleteBelow: number, logger: Logger) {
  const n = uniqueNames(prefix);
  await createTopics([n.events], partitions);
  const gaps: OffsetGap[] = [];
  const read: string[] = [];
  const joins: string[] = [];
  const source = (name: string, extra: Partial<ConsumerOptions> = {}) =>
    new KafkaSource({
      kafka: createKafka(kafkaSettingsFromEnv(brokers(), {}), logger),
      groupId: n.group,
      topic: n.events,
      logger,
      commitIntervalMs: 50,
      sessionTimeoutMs: 6000,
      handle: (records) => {
        read.push(...records.map((r) => r.offset!));
        return Promise.resolve();
      },
      onGap: (gap) => {
        gaps.push(gap);
        return Promise.resolve();
      },
      onAssign: (ps) => joins.push(`${name}:${ps.join(",")}`),
      ...extra,
    });
  /** Records `from`..`to` - 1 to each partition. */
  const produceEach = async (from: number, to: number) => {
    const producer = kafka().producer();
    await producer.connect();
    try {
      await producer.send({
        topic: n.events,
        acks: -1,
        messages: Array.from(
          { length: partitions },
          (_, partition) =>
            Array.from({ length: to - from }, (_, i) => ({ key: "k", value: String(from + i), partition })),
        ).flat(),
      });
    } finally {
      await producer.disconnect();
    }
  };
  await produceEach(0, 10);
  const first = source("first");
  await first.start();
  await waitFor("the first records committed", async () => await groupLag(n.group, n.events) === 0);
  await first.stop();
  read.length = 0;
  joins.length = 0;
  await produceEach(10, 30);
  await withAdmin(async (admin) => {
    await admin.fetchTopicMetadata({ topics: [n.events] });
    await admin.deleteTopicRecords({
      topic: n.events,
      partitions: Array.from(
        { length: partitions },
        (_, partition) => ({ partition, offset: String(deleteBelow) }),
      ),
    });
  });
  /** Once kafkajs found every offset out of range and committed "earliest" in its place. */
  const reset = () =>
    waitFor(
      "kafkajs committed earliest in place of every offset",
      async () =>
        await withAdmin(async (admin) => {
          const [t] = await admin.fetchOffsets({ groupId: n.group, topics: [n.events] });
          return t!.partitions.length === partitions && t!.partitions.every((p) => p.offset === "-2");
        }),
    );
  return { n, gaps, read, joins, source, reset };
}

const quiet = createLogger({ level: "error", sink: { write: () => {}, pretty: false } });

Deno.test("KafkaSource held before processing reports a gap it found, though the partition goes to another member", async () => {
  // kafkajs commits "earliest" for the group as soon as it finds the offset out of range, so the
  // member that found the gap is the only one that can tell: engine workers of a first start hold
  // their batches until every worker joined, and the partition often moves meanwhile.
  const f = await gapFixture("deleted-held", 1, 25, quiet);
  const held = f.source("held", { processAfter: new Promise<void>(() => {}) });
  let taker: KafkaSource | null = null;
  try {
    await held.start();
    await f.reset();
    // The held member's batch came: it waits, heartbeating, for its processing gate.
    await new Promise((r) => setTimeout(r, 1000));
    await held.stop();
    taker = f.source("taker");
    await taker.start();
    await waitFor("the records left", () => f.read.length >= 5);
    assert.deepEqual(f.read, ["25", "26", "27", "28", "29"]);
    assert.deepEqual(f.gaps, [{ topic: f.n.events, partition: 0, from: "10", to: "24", records: 15 }]);
  } finally {
    await held.stop();
    await taker?.stop();
  }
});

Deno.test("KafkaSource stopped between finding a gap and its first batch reports the gap", async () => {
  let onReset = () => {};
  const logger = createLogger({
    level: "error",
    sink: {
      write: (l) => {
        if (JSON.parse(l).msg === "kafkajs ConsumerGroup: Offset out of range, resetting to default offset") {
          onReset();
        }
      },
      pretty: false,
    },
  });
  const f = await gapFixture("deleted-stopped", 1, 25, logger);
  const stopped = f.source("stopped");
  let stopping: Promise<void> | null = null;
  onReset = () => stopping ??= stopped.stop();
  let next: KafkaSource | null = null;
  try {
    await stopped.start();
    await waitFor("the member stopped at the reset", () => stopping !== null);
    await stopping;
    onReset = () => {};
    next = f.source("next");
    await next.start();
    await waitFor("the records left", () => f.read.length >= 5);
    assert.deepEqual(f.read, ["25", "26", "27", "28", "29"]);
    assert.deepEqual(f.gaps, [{ topic: f.n.events, partition: 0, from: "10", to: "24", records: 15 }]);
  } finally {
    await (stopping ?? stopped.stop());
    await next?.stop();
  }
});

for (const partitions of [1, 2]) {
  Deno.test(`KafkaSource: gaps found on ${partitions} partition(s) with nothing after them, a second member joins before any batch: each reported once`, async () => {
    // Every record past the committed offsets is deleted: no batch comes to report the gaps from.
    // The rejoin reads the committed offsets again, kafkajs's "earliest" by then; with two
    // partitions one of them moves to the newcomer, which cannot tell.
    const f = await gapFixture("deleted-rejoin", partitions, 30, quiet);
    const a = f.source("a");
    const b = f.source("b");
    try {
      await a.start();
      await f.reset();
      await b.start();
      await waitFor("b joined", () => f.joins.some((j) => j.startsWith("b")), 30_000);
    } finally {
      await b.stop();
      await a.stop();
    }
    assert.deepEqual(
      f.gaps.sort((x, y) => x.partition - y.partition),
      Array.from({ length: partitions }, (_, partition) => ({
        topic: f.n.events,
        partition,
        from: "10",
        to: "29",
        records: 20,
      })),
      `joins: ${f.joins.join(" ")}`,
    );
  });
}

Deno.test("KafkaSource killed while it reports a gap leaves the offset out of range: the next member reports the gap", async () => {
  // kafkajs commits "earliest" in place of the offset it found out of range: a process killed
  // between that commit and the report lost the report, and no member could tell after it.
  const f = await gapFixture("deleted-killed", 1, 25, quiet);
  const worker = new Worker(new URL("./gap_member_worker.ts", import.meta.url), { type: "module" });
  let next: KafkaSource | null = null;
  try {
    const reporting = new Promise<void>((resolve, reject) => {
      worker.onmessage = (e) => e.data === "gap" && resolve();
      worker.onerror = (e) => reject(new Error(`the member's worker failed: ${e.message}`));
    });
    worker.postMessage({ brokers: brokers(), group: f.n.group, topic: f.n.events });
    await reporting;
    const committed = await withAdmin(async (admin) => {
      const [t] = await admin.fetchOffsets({ groupId: f.n.group, topics: [f.n.events] });
      return t!.partitions[0]!.offset;
    });
    assert.equal(committed, "10", "the group's offset while the gap is reported");
    worker.terminate();
    next = f.source("next");
    await next.start();
    await waitFor("the records left", () => f.read.length >= 5, 30_000);
    assert.deepEqual(f.read, ["25", "26", "27", "28", "29"]);
    assert.deepEqual(f.gaps, [{ topic: f.n.events, partition: 0, from: "10", to: "24", records: 15 }]);
  } finally {
    worker.terminate();
    await next?.stop();
  }
});

Deno.test("KafkaSource whose gap report fails keeps the offset and reports the gap once it can", async () => {
  const f = await gapFixture("deleted-refused", 1, 25, quiet);
  let refusals = 0;
  const committedAtRefusal: string[] = [];
  const source = f.source("refused", {
    onGap: async (gap) => {
      if (refusals < 2) {
        refusals++;
        committedAtRefusal.push(
          await withAdmin(async (admin) => {
            const [t] = await admin.fetchOffsets({ groupId: f.n.group, topics: [f.n.events] });
            return t!.partitions[0]!.offset;
          }),
        );
        throw new Error("the DLQ refused the record");
      }
      f.gaps.push(gap);
    },
  });
  try {
    await source.start();
    await waitFor("the records left", () => f.read.length >= 5, 30_000);
    assert.deepEqual(committedAtRefusal, ["10", "10"]);
    assert.deepEqual(f.read, ["25", "26", "27", "28", "29"]);
    assert.deepEqual(f.gaps, [{ topic: f.n.events, partition: 0, from: "10", to: "24", records: 15 }]);
  } finally {
    await source.stop();
  }
});

Deno.test("KafkaSource rewound to an offset since deleted reports the gap from there", async () => {
  // A failed transaction rewinds its partition to the batch's first offset (exactly-once); records
  // deleted meanwhile were measured from the end of that batch, and a gap inside it not reported.
  const n = uniqueNames("deleted-rewound");
  await createTopics([n.events], 1);
  await produce(n.events, Array.from({ length: 10 }, (_, i) => ({ key: "k", value: String(i) })));
  const gaps: OffsetGap[] = [];
  const read: string[] = [];
  let first = true;
  const source: KafkaSource = new KafkaSource({
    kafka: createKafka(kafkaSettingsFromEnv(brokers(), {}), quiet),
    groupId: n.group,
    topic: n.events,
    logger: quiet,
    autoCommit: false,
    handle: async (records) => {
      read.push(...records.map((r) => r.offset!));
      if (!first) return;
      first = false;
      await withAdmin(async (admin) => {
        await admin.fetchTopicMetadata({ topics: [n.events] });
        await admin.deleteTopicRecords({ topic: n.events, partitions: [{ partition: 0, offset: "5" }] });
      });
      source.rewind(0, 0n);
    },
    onGap: (gap) => {
      gaps.push(gap);
      return Promise.resolve();
    },
  });
  try {
    await source.start();
    await waitFor("the records left read again", () => read.length >= 15);
    assert.deepEqual(read.slice(10), ["5", "6", "7", "8", "9"]);
    assert.deepEqual(gaps, [{ topic: n.events, partition: 0, from: "0", to: "4", records: 5 }]);
  } finally {
    await source.stop();
  }
});

Deno.test("KafkaSource whose gap report outlasts its wait says the gap once and reads on", async () => {
  // The hook's wait is half the 6 s session: a report of 4 s outlasts it, kafkajs retries the fetch,
  // finds the offset out of range again and calls the hook again. Each call started a report of its
  // own: the gap was said 10 times in 45 s and the member, never heartbeating, was dropped.
  const f = await gapFixture("deleted-slow", 1, 25, quiet);
  let calls = 0;
  const source = f.source("slow", {
    onGap: async (gap) => {
      calls++;
      await new Promise((r) => setTimeout(r, 4_000));
      f.gaps.push(gap);
    },
  });
  try {
    await source.start();
    await waitFor("the records left", () => f.read.length >= 5, 30_000);
    assert.deepEqual(f.read, ["25", "26", "27", "28", "29"]);
    assert.equal(calls, 1);
    assert.deepEqual(f.gaps, [{ topic: f.n.events, partition: 0, from: "10", to: "24", records: 15 }]);
  } finally {
    await source.stop();
  }
});

Deno.test("KafkaSource reports a gap with kafkajs's logging turned off (KAFKAJS_LOG_LEVEL=NOTHING)", async () => {
  // The gap was noticed only from kafkajs's log line, which that setting (read by kafkajs itself)
  // silences: no gap was ever reported.
  const f = await gapFixture("deleted-silent", 1, 25, quiet);
  Deno.env.set("KAFKAJS_LOG_LEVEL", "NOTHING");
  const source = f.source("silent");
  try {
    await source.start();
    await waitFor("the records left", () => f.read.length >= 5);
    assert.deepEqual(f.read, ["25", "26", "27", "28", "29"]);
    assert.deepEqual(f.gaps, [{ topic: f.n.events, partition: 0, from: "10", to: "24", records: 15 }]);
  } finally {
    Deno.env.delete("KAFKAJS_LOG_LEVEL");
    await source.stop();
  }
});
