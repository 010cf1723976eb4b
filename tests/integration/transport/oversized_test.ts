/**
 * Records the broker refuses for their size (MESSAGE_TOO_LARGE), against the real broker with topics
 * whose `max.message.bytes` is 20,000: a refused request is reshaped, never sent again unchanged (it
 * was retried for ever, holding back every later send), and every record is accounted for.
 */
import assert from "node:assert/strict";
import { DlqRecord } from "../../../src/contract/schemas.ts";
import { buildDlqRecord, shrinkForDlq } from "../../../src/dlq/record.ts";
import { createLogger } from "../../../src/log.ts";
import { KafkaOutput } from "../../../src/transport/kafka.ts";
import type { Output, OutRecord } from "../../../src/transport/output.ts";
import { TransactionalOutput } from "../../../src/transport/transactional.ts";
import { kafka, readTopic, uniqueNames, withAdmin } from "../../helpers/kafka.ts";

const logger = createLogger({ level: "error" });
const LIMIT = 20_000;

async function smallTopics(n: ReturnType<typeof uniqueNames>): Promise<void> {
  const configEntries = [{ name: "max.message.bytes", value: String(LIMIT) }];
  await withAdmin((admin) =>
    admin.createTopics({
      topics: [
        { topic: n.alerts, numPartitions: 3, configEntries },
        { topic: n.dlq, numPartitions: 1, configEntries },
      ],
      waitForLeaders: true,
    })
  );
}

/** `p`, or an error naming `what` once `ms` passed: a send retried for ever must fail the test, not hang it. */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer!: ReturnType<typeof setTimeout>;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function dlqRecord(dlqTopic: string, offset: number, value: string): OutRecord {
  const dlq = buildDlqRecord({
    topic: "events",
    key: `k-${offset}`,
    value,
    partition: 0,
    offset: String(offset),
    stage: "decode",
    error: "Message value is not valid JSON",
  });
  return { topic: dlqTopic, key: dlq.original_key, value: JSON.stringify(dlq) };
}

/**
 * 20 small alerts, an alert of 30,000 bytes, three DLQ records of ~15,000 bytes (together over the
 * limit, each under it: "é" is 2 bytes) and one of 40,000 bytes, all in one send.
 */
function records(n: ReturnType<typeof uniqueNames>): OutRecord[] {
  const small = Array.from(
    { length: 20 },
    (_, i) => ({ topic: n.alerts, key: `s-${i}`, value: `alert ${i}` }),
  );
  return [
    ...small.slice(0, 10),
    { topic: n.alerts, key: "big", value: JSON.stringify({ big: "x".repeat(30_000) }) },
    dlqRecord(n.dlq, 1, "é".repeat(7_400)),
    dlqRecord(n.dlq, 2, "é".repeat(7_400)),
    dlqRecord(n.dlq, 3, "é".repeat(7_400)),
    dlqRecord(n.dlq, 4, "y".repeat(40_000)),
    ...small.slice(10),
  ];
}

/**
 * Every record is on its topic or stands in the DLQ; `exactly`: once (a transaction), else at least
 * once (the partitions of a refused request the broker wrote are written again).
 */
async function assertAccountedFor(n: ReturnType<typeof uniqueNames>, exactly: boolean): Promise<void> {
  const alerts = (await readTopic(n.alerts, (v) => new Set(v).size >= 20, 30_000)).map((r) => r.value);
  assert.deepEqual(
    exactly ? alerts.sort() : [...new Set(alerts)].sort(),
    Array.from({ length: 20 }, (_, i) => `alert ${i}`).sort(),
  );
  const dlq = (await readTopic(n.dlq, (v) => v.length >= 5, 30_000)).map((r) =>
    DlqRecord.parse(JSON.parse(r.value))
  );
  const byOffset = new Map(dlq.filter((d) => d.original_offset !== null).map((d) => [d.original_offset, d]));
  for (const o of ["1", "2", "3"]) {
    assert.equal(byOffset.get(o)?.original_value, "é".repeat(7_400), `DLQ record ${o}`);
  }
  // Too large alone: the original value dropped, its size and the reasons kept.
  const shrunk = byOffset.get("4")!;
  assert.equal(shrunk.original_value, null);
  assert.equal(shrunk.original_value_truncated, true);
  assert.equal(shrunk.original_size, 40_000);
  assert.equal(shrunk.error, "Message value is not valid JSON");
  assert.match(String(shrunk.original_value_dropped), /too large \(MESSAGE_TOO_LARGE: \d+ bytes\)/);
  // The alert too large for its topic: its failure in the DLQ (whose own original value was dropped in turn).
  const alert = dlq.find((d) => d.original_topic === n.alerts);
  assert.ok(alert !== undefined, JSON.stringify(dlq.map((d) => d.original_topic)));
  assert.equal(alert.stage, "alert");
  assert.equal(alert.original_key, "big");
  assert.match(
    alert.error,
    /^The broker refused the record as too large \(MESSAGE_TOO_LARGE: 30\d{3} bytes\)$/,
  );
  assert.equal(alert.original_size, 30_010);
  const stands = dlq.map((d) => `${d.original_topic} ${d.original_offset}`);
  assert.equal(exactly ? stands.length : new Set(stands).size, 5, JSON.stringify(stands));
}

const outputs: Record<string, (n: ReturnType<typeof uniqueNames>) => Output> = {
  KafkaOutput: (n) =>
    new KafkaOutput(kafka(), { retryUntilClosed: true, logger, shrink: shrinkForDlq(n.dlq) }),
  TransactionalOutput: (n) =>
    new TransactionalOutput(kafka(), {
      transactionalId: `${n.group}-t`,
      groupId: n.group,
      logger,
      // The send rejects when the transaction fails: the test sees it there.
      onFailure: () => {},
      shrink: shrinkForDlq(n.dlq),
    }),
};

for (const [name, make] of Object.entries(outputs)) {
  Deno.test(`${name}: a request refused as too large is split, and a record too large alone stands in the DLQ`, async () => {
    const n = uniqueNames(`oversized-${name}`);
    await smallTopics(n);
    const output = make(n);
    try {
      await within(output.send(records(n)), 60_000, "the send");
      await assertAccountedFor(n, name === "TransactionalOutput");
    } finally {
      await output.close();
    }
  });
}

Deno.test("KafkaOutput: a record too large that nothing stands for fails its send alone, not retried", async () => {
  const n = uniqueNames("oversized-alone");
  await smallTopics(n);
  // retryUntilClosed: it used to retry the same request for ever, holding back the next send.
  const output = new KafkaOutput(kafka(), { retryUntilClosed: true, logger });
  try {
    const big = output.send([{ topic: n.alerts, key: "big", value: "x".repeat(30_000) }]);
    const next = output.send([{ topic: n.alerts, key: "next", value: "next" }]);
    await assert.rejects(
      within(big, 60_000, "the oversized send"),
      /A record of 30067 bytes for topic ".*\.alerts" \(key "big"\) was refused on its own \(MESSAGE_TOO_LARGE/,
    );
    await within(next, 60_000, "the send after it");
    assert.deepEqual((await readTopic(n.alerts, (v) => v.length >= 1, 30_000)).map((r) => r.value), ["next"]);
  } finally {
    await output.close();
  }
});
