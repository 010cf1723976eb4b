/**
 * At-least-once: a rebalance that a member notices between batches (kafkajs's own heartbeat, while
 * nothing is fetched) must not make the group read again what the member processed and had not
 * committed yet. Its commit has to reach the broker before its JoinGroup: once the last member has
 * joined, the group's generation moves on and a commit of the old one is refused.
 */
import assert from "node:assert/strict";
import { createLogger, type Logger } from "../../../src/log.ts";
import { KafkaSource } from "../../../src/source/kafka.ts";
import { createKafka, kafkaSettingsFromEnv } from "../../../src/transport/kafka.ts";
import { brokers, createTopics, produce, uniqueNames, waitFor } from "../../helpers/kafka.ts";

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * A topic of one partition with 10 records, and `member(name, durableAfterMs)` making members of its
 * group whose output of a batch is durable that long after the batch.
 */
async function handoverGroup(prefix: string, logger: Logger) {
  const n = uniqueNames(prefix);
  await createTopics([n.events], 1);
  await produce(n.events, Array.from({ length: 10 }, (_, i) => ({ key: "k", value: String(i) })));
  const handled: string[] = [];
  const joins: string[] = [];
  const member = (name: string, durableAfterMs: number) =>
    new KafkaSource({
      kafka: createKafka(kafkaSettingsFromEnv(brokers(), {}), logger),
      groupId: n.group,
      topic: n.events,
      logger,
      // Nothing is committed by the timer within the test: only a hand-over commits.
      commitIntervalMs: 120_000,
      // kafkajs heartbeats every 2 s: the rebalance is noticed while the output is still in flight.
      sessionTimeoutMs: 6000,
      handle: (records, ctx) => {
        handled.push(...records.map((r) => `${r.offset}`));
        ctx.commitAfter(sleep(durableAfterMs));
        return Promise.resolve();
      },
      onAssign: (partitions) => joins.push(`${name}:${partitions.join(",")}`),
    });
  /** a handles the 10 records; then b joins while a is idle (nothing more to fetch). */
  const rebalance = async (a: KafkaSource, b: KafkaSource) => {
    await a.start();
    await waitFor("a handled the 10 records", () => handled.length >= 10, 30_000);
    await b.start();
    await waitFor("both members in the new generation", () => joins.some((j) => j.startsWith("b")), 30_000);
  };
  return { handled, joins, member, rebalance };
}

Deno.test("KafkaSource (at-least-once) hands in what it processed before it rejoins, when a rebalance comes between batches", async () => {
  const g = await handoverGroup(
    "handover",
    createLogger({ level: "error", sink: { write: () => {}, pretty: false } }),
  );
  const a = g.member("a", 4000);
  const b = g.member("b", 0);
  try {
    await g.rebalance(a, b);
    // Whoever has the partition now reads from the committed offset: give it time to.
    await sleep(3000);
    assert.deepEqual(
      g.handled.sort((x, y) => Number(x) - Number(y)),
      Array.from({ length: 10 }, (_, i) => String(i)),
      `joins: ${g.joins.join(" ")}`,
    );
  } finally {
    await b.stop();
    await a.stop();
  }
});

Deno.test("KafkaSource (at-least-once) with outputs in flight longer than its session: the hand-over gives up in time, the member stays in the group", async () => {
  const lines: string[] = [];
  const g = await handoverGroup(
    "handover-slow",
    createLogger({ level: "warn", sink: { write: (l) => lines.push(l), pretty: false } }),
  );
  // a's output takes longer than its 6 s session: waiting for all of it (stopGraceMs, 10 s) before
  // rejoining, without heartbeats, the group dropped a and refused its rejoin.
  const a = g.member("a", 9000);
  const b = g.member("b", 0);
  try {
    await g.rebalance(a, b);
    await sleep(7000);
    const dropped = lines.filter((l) => /not aware of this member|UNKNOWN_MEMBER_ID/i.test(l));
    assert.deepEqual(dropped, [], `joins: ${g.joins.join(" ")}`);
    assert.equal(g.joins.filter((j) => j.startsWith("a")).length, 2, `joins: ${g.joins.join(" ")}`);
  } finally {
    await b.stop();
    await a.stop();
  }
});
