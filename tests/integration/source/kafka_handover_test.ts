/**
 * At-least-once: a rebalance that a member notices between batches (kafkajs's own heartbeat, while
 * nothing is fetched) must not make the group read again what the member processed and had not
 * committed yet. Its commit has to reach the broker before its JoinGroup: once the last member has
 * joined, the group's generation moves on and a commit of the old one is refused.
 */
import assert from "node:assert/strict";
import { createLogger } from "../../../src/log.ts";
import { KafkaSource } from "../../../src/source/kafka.ts";
import { createKafka, kafkaSettingsFromEnv } from "../../../src/transport/kafka.ts";
import { brokers, createTopics, produce, uniqueNames, waitFor } from "../../helpers/kafka.ts";

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

Deno.test("KafkaSource (at-least-once) hands in what it processed before it rejoins, when a rebalance comes between batches", async () => {
  const n = uniqueNames("handover");
  await createTopics([n.events], 1);
  const logger = createLogger({ level: "error", sink: { write: () => {}, pretty: false } });
  const handled: string[] = [];
  const joins: string[] = [];
  const member = (name: string, durableAfterMs: number) => {
    const source: KafkaSource = new KafkaSource({
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
    return source;
  };
  await produce(n.events, Array.from({ length: 10 }, (_, i) => ({ key: "k", value: String(i) })));
  const a = member("a", 4000);
  const b = member("b", 0);
  try {
    await a.start();
    await waitFor("a handled the 10 records", () => handled.length >= 10, 30_000);
    // b joins; a is idle (nothing more to fetch), its output not yet durable.
    await b.start();
    await waitFor(
      "both members in the new generation",
      () => joins.filter((j) => j.startsWith("b")).length > 0,
      30_000,
    );
    // Whoever has the partition now reads from the committed offset: give it time to.
    await sleep(3000);
    assert.deepEqual(handled.sort((x, y) => Number(x) - Number(y)), [
      "0",
      "1",
      "2",
      "3",
      "4",
      "5",
      "6",
      "7",
      "8",
      "9",
    ], `joins: ${joins.join(" ")}`);
  } finally {
    await b.stop();
    await a.stop();
  }
});

Deno.test("KafkaSource (at-least-once) with outputs in flight longer than its session: the hand-over gives up in time, the member stays in the group", async () => {
  const n = uniqueNames("handover-slow");
  await createTopics([n.events], 1);
  const lines: string[] = [];
  const logger = createLogger({ level: "warn", sink: { write: (l) => lines.push(l), pretty: false } });
  const handled: string[] = [];
  const joins: string[] = [];
  const member = (name: string, durableAfterMs: number) =>
    new KafkaSource({
      kafka: createKafka(kafkaSettingsFromEnv(brokers(), {}), logger),
      groupId: n.group,
      topic: n.events,
      logger,
      commitIntervalMs: 120_000,
      sessionTimeoutMs: 6000,
      handle: (records, ctx) => {
        handled.push(...records.map((r) => `${r.offset}`));
        ctx.commitAfter(sleep(durableAfterMs));
        return Promise.resolve();
      },
      onAssign: (partitions) => joins.push(`${name}:${partitions.join(",")}`),
    });
  await produce(n.events, Array.from({ length: 10 }, (_, i) => ({ key: "k", value: String(i) })));
  // a's output takes longer than its 6 s session: waiting for all of it (stopGraceMs, 10 s) before
  // rejoining, without heartbeats, the group dropped a and refused its rejoin.
  const a = member("a", 9000);
  const b = member("b", 0);
  try {
    await a.start();
    await waitFor("a handled the 10 records", () => handled.length >= 10, 30_000);
    await b.start();
    await waitFor(
      "both members in the new generation",
      () => joins.filter((j) => j.startsWith("b")).length > 0,
      30_000,
    );
    await sleep(7000);
    const dropped = lines.filter((l) => /not aware of this member|UNKNOWN_MEMBER_ID/i.test(l));
    assert.deepEqual(dropped, [], `joins: ${joins.join(" ")}`);
    assert.equal(joins.filter((j) => j.startsWith("a")).length, 2, `joins: ${joins.join(" ")}`);
  } finally {
    await b.stop();
    await a.stop();
  }
});
