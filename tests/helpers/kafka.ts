/**
 * Helpers for integration tests against the real broker that `deno task test` starts
 * (or the one KAFKA_BROKERS points at). Never a mock: these talk Kafka's protocol.
 */
import { Buffer } from "node:buffer";
import { type Admin, Kafka, logLevel, Partitioners } from "kafkajs";
import { fixReadCommitted } from "../../src/transport/read_committed.ts";
// The service's mended request queue for the tests' own clients too: kafkajs's re-arms a timer with a
// negative delay after every response ("TimeoutNegativeWarning" once per test file).
import "../../src/transport/request_queue.ts";

export function brokers(): string[] {
  const b = Deno.env.get("KAFKA_BROKERS");
  if (!b) {
    throw new Error(
      "KAFKA_BROKERS is not set: run `deno task test`, which starts a local broker for the tests " +
        "(a test that needs a broker belongs under tests/integration/, which `deno task test:unit` leaves out)",
    );
  }
  return b.split(",");
}

export function kafka(): Kafka {
  // The tests read alerts as the service does: without an aborted transaction's records.
  fixReadCommitted();
  return new Kafka({
    clientId: "tests",
    brokers: brokers(),
    logLevel: logLevel.NOTHING,
    retry: { retries: 8 },
  });
}

/** Names no other test uses, so tests can share one broker. */
export function uniqueNames(prefix: string) {
  const id = `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 7)}`;
  return {
    events: `${id}.events`,
    alerts: `${id}.alerts`,
    dlq: `${id}.dlq`,
    aggregates: `${id}.aggregates`,
    group: `${id}.processors`,
    notifierGroup: `${id}.notifiers`,
  };
}

/** The service's environment for the topics and groups of `uniqueNames`. */
export function topicEnv(
  n: ReturnType<typeof uniqueNames>,
  brokerList = brokers().join(","),
): Record<string, string> {
  return {
    KAFKA_BROKERS: brokerList,
    SENSOR_TOPIC: n.events,
    ALERTS_TOPIC: n.alerts,
    DLQ_TOPIC: n.dlq,
    AGGREGATES_TOPIC: n.aggregates,
    CONSUMER_GROUP: n.group,
    NOTIFIER_GROUP: n.notifierGroup,
  };
}

export async function withAdmin<T>(fn: (admin: Admin) => Promise<T>): Promise<T> {
  const admin = kafka().admin();
  await admin.connect();
  try {
    return await fn(admin);
  } finally {
    await admin.disconnect();
  }
}

export async function createTopics(topics: string[], numPartitions = 3): Promise<void> {
  await withAdmin((admin) =>
    admin.createTopics({ topics: topics.map((topic) => ({ topic, numPartitions })), waitForLeaders: true })
  );
}

/**
 * Deletes `topic` and creates it again with `numPartitions` (a new topic id; `compacted`: as a
 * compacted topic) once the broker has let
 * the old one go: deletion is asynchronous, and the name is refused until it is done.
 */
export async function recreateTopic(
  topic: string,
  numPartitions: number,
  { compacted = false } = {},
): Promise<void> {
  await withAdmin((admin) => admin.deleteTopics({ topics: [topic] }));
  for (let attempt = 0;; attempt++) {
    try {
      if (compacted) await createCompactedTopic(topic, numPartitions);
      else await createTopics([topic], numPartitions);
      return;
    } catch (err) {
      if (attempt > 60) throw err;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

/** A topic that keeps each key's newest record (`cleanup.policy=compact`), as state and limits topics are. */
export async function createCompactedTopic(topic: string, numPartitions: number): Promise<void> {
  await withAdmin((admin) =>
    admin.createTopics({
      topics: [{ topic, numPartitions, configEntries: [{ name: "cleanup.policy", value: "compact" }] }],
      waitForLeaders: true,
    })
  );
}

export async function produce(
  topic: string,
  messages: { key: string | null; value: string | Uint8Array | null; timestamp?: string }[],
): Promise<void> {
  const producer = kafka().producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  try {
    for (let i = 0; i < messages.length; i += 500) {
      await producer.send({
        topic,
        acks: -1,
        messages: messages.slice(i, i + 500).map((m) => ({
          key: m.key,
          value: m.value instanceof Uint8Array ? Buffer.from(m.value) : m.value,
          ...(m.timestamp === undefined ? {} : { timestamp: m.timestamp }),
        })),
      });
    }
  } finally {
    await producer.disconnect();
  }
}

/** Every record of `topic` from the beginning, read until `until` holds or the timeout passes. */
export async function readTopic(
  topic: string,
  until: (values: string[]) => boolean,
  timeoutMs = 30_000,
): Promise<{ key: string | null; value: string; timestamp: number }[]> {
  const consumer = kafka().consumer({ groupId: `reader-${crypto.randomUUID()}`, maxWaitTimeInMs: 100 });
  const seen: { key: string | null; value: string; timestamp: number }[] = [];
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  let resolve!: () => void;
  const done = new Promise<void>((r) => resolve = r);
  const values: string[] = [];
  await consumer.run({
    // `until` runs once per fetched batch, not per message: reading 100,000 records stays linear.
    eachBatch: ({ batch }) => {
      for (const message of batch.messages) {
        const value = message.value?.toString() ?? "";
        seen.push({ key: message.key?.toString() ?? null, value, timestamp: Number(message.timestamp) });
        values.push(value);
      }
      if (until(values)) resolve();
      return Promise.resolve();
    },
  });
  const timer = setTimeout(resolve, timeoutMs);
  await done;
  clearTimeout(timer);
  await consumer.disconnect();
  return seen;
}

/** Sum of (high watermark − committed offset) over the group's partitions of `topic`. */
export async function groupLag(group: string, topic: string): Promise<number> {
  return await withAdmin(async (admin) => {
    const ends = await admin.fetchTopicOffsets(topic);
    const [committed] = await admin.fetchOffsets({ groupId: group, topics: [topic] });
    let lag = 0;
    for (const end of ends) {
      const c = committed?.partitions.find((p) => p.partition === end.partition);
      const at = c === undefined || c.offset === "-1" ? 0 : Number(c.offset);
      lag += Number(end.high) - at;
    }
    return lag;
  });
}

export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Runs `scripts/kafka/kafka.sh COMMAND --dir DIR` for a test's own throwaway broker (one it may stop,
 * kill or start late); throws with kafka.sh's stderr if it fails, returns its stdout.
 */
export async function kafkaSh(dir: string, ...args: string[]): Promise<string> {
  const out = await new Deno.Command("bash", {
    args: ["scripts/kafka/kafka.sh", ...args, "--dir", dir],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder();
  if (out.code !== 0) throw new Error(`kafka.sh ${args.join(" ")} failed: ${text.decode(out.stderr)}`);
  return text.decode(out.stdout).trim();
}
