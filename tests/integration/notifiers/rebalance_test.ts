/**
 * The notifier group's rebalances against a receiver that is down: a member hands its partitions
 * over without waiting for that receiver, so the other receivers' notifications go on (the promise
 * that no receiver holds up another holds across a rebalance too), and a member that keeps a
 * partition does not notify its alerts again when it reads them again from the committed offset.
 */
import assert from "node:assert/strict";
import { Partitioners } from "kafkajs";
import webhook from "../../../plugins/webhook.ts";
import { createLogger, print } from "../../../src/log.ts";
import { kafkaNotifierStage } from "../../../src/notifiers/stage.ts";
import { createKafka, kafkaSettingsFromEnv } from "../../../src/transport/kafka.ts";
import { alertRecord, dispatcher, instance } from "../../helpers/notifiers.ts";
import { brokers, createTopics, groupLag, kafka, uniqueNames, waitFor } from "../../helpers/kafka.ts";
import { type Received, Receiver } from "../../helpers/receiver.ts";

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

const alertIdOf = (r: Received): string => JSON.parse(r.body).alert.alert_id;

/** Per alert id, the requests in `received` (of those `counted` keeps). */
function perAlert(received: Received[], counted: (r: Received) => boolean = () => true): Map<string, number> {
  const counts = new Map<string, number>();
  for (const r of received.filter(counted)) counts.set(alertIdOf(r), (counts.get(alertIdOf(r)) ?? 0) + 1);
  return counts;
}

Deno.test("notifier stage: a rebalance does not hold a healthy receiver's notifications for a receiver that is down, nor notify a kept partition's alerts twice", async () => {
  const n = uniqueNames("notify-rebalance");
  await createTopics([n.alerts], 2);
  const logger = createLogger({ level: "error", sink: { write: () => {}, pretty: false } });
  // Down (503) until the end of the test, then up: what each member notified is counted once it answers.
  const slowOk = new Set<Received>();
  let slowUp = false;
  const slow = await Receiver.start((r) => {
    if (!slowUp) return 503;
    slowOk.add(r);
    return 200;
  });
  const arrived = new Map<string, number>();
  const healthy = await Receiver.start((r) => {
    if (!arrived.has(alertIdOf(r))) arrived.set(alertIdOf(r), performance.now());
    return 200;
  });
  const assignments: Record<string, number[][]> = { a: [], b: [] };
  const member = async (name: string) => {
    const insts = [
      await instance(webhook, "slow", { url: `${slow.url}/hook`, allow_private_targets: true }, logger),
      await instance(webhook, "healthy", { url: `${healthy.url}/hook`, allow_private_targets: true }, logger),
    ];
    // The default retry budget (minutes), fast retries: a delivery to `slow` is pending all along.
    const d = dispatcher(insts, { logger }, {
      policy: { baseDelayMs: 200, maxDelayMs: 1000, giveUpAfterMs: 600_000 },
      breaker: { failureThreshold: 5, cooldownMs: 1000 },
    });
    const source = kafkaNotifierStage({
      kafka: createKafka(kafkaSettingsFromEnv(brokers(), {}), logger),
      dispatcher: d,
      output: { send: () => Promise.resolve(), close: () => Promise.resolve() },
      groupId: n.notifierGroup,
      alertsTopic: n.alerts,
      dlqTopic: n.dlq,
      logger,
      // The default session: the old hand-over waited min(stopGraceMs, 15 s) for the pending deliveries.
      sessionTimeoutMs: 30_000,
      stopGraceMs: 15_000,
      onAssign: (partitions) => assignments[name]!.push(partitions),
    });
    return { dispatcher: d, source };
  };
  const producer = kafka().producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  /** Produced at (performance.now()), per probe alert id. */
  const sent = new Map<string, number>();
  let probing = true;
  const probes = (async () => {
    for (let i = 0; probing; i++) {
      sent.set(`probe-${i}`, performance.now());
      await producer.send({ topic: n.alerts, acks: -1, messages: [alertRecord("probe", i)] });
      await sleep(250);
    }
  })();
  /** The longest a probe produced in `[from, to)` took to reach the healthy receiver (ms). */
  const worstDelay = (from: number, to: number) =>
    Math.max(
      ...[...sent].filter(([, at]) => at >= from && at < to).map(([id, at]) =>
        (arrived.get(id) ?? Infinity) - at
      ),
    );

  const a = await member("a");
  let b: Awaited<ReturnType<typeof member>> | null = null;
  try {
    await a.source.start();
    await waitFor("a in the group", () => assignments.a!.length === 1, 30_000);
    await producer.send({
      topic: n.alerts,
      acks: -1,
      messages: Array.from({ length: 10 }, (_, i) => alertRecord("early", i)),
    });
    await waitFor("the early alerts at the healthy receiver", () => arrived.size >= 10, 30_000);
    await waitFor("the slow receiver refusing them", () => slow.received.length >= 20, 30_000);

    // A second member joins: a rejoins (at its next heartbeat) while its deliveries to `slow` wait.
    const joinStart = performance.now();
    b = await member("b");
    await b.source.start();
    await waitFor("both members in the new generation", () => assignments.b!.length >= 1, 60_000);
    await waitFor("a in the new generation", () => assignments.a!.length >= 2, 60_000);
    await sleep(3000);
    const joinEnd = performance.now();

    // b leaves, as a stopping service does: its deliveries given up, then the group left.
    const leaveStart = performance.now();
    const leaving = b;
    b = null;
    await leaving.dispatcher.close();
    await leaving.source.stop();
    await waitFor("a alone in the group again", () => assignments.a!.length >= 3, 60_000);
    await sleep(3000);
    const leaveEnd = performance.now();
    probing = false;
    await probes;
    await waitFor(
      "every probe at the healthy receiver",
      () => [...sent.keys()].every((id) => arrived.has(id)),
      60_000,
    ).catch(() => {});
    const join = worstDelay(joinStart, joinEnd);
    const leave = worstDelay(leaveStart, leaveEnd);
    print(
      `healthy receiver's longest delay across the rebalance: ${Math.round(join)} ms when b joined, ` +
        `${Math.round(leave)} ms when b left (a's assignments: ${JSON.stringify(assignments.a)}, ` +
        `b's: ${JSON.stringify(assignments.b)})`,
    );
    assert.ok(join < 6000, `a probe took ${Math.round(join)} ms to reach the healthy receiver when b joined`);
    assert.ok(leave < 6000, `a probe took ${Math.round(leave)} ms to reach the healthy receiver when b left`);

    // The slow receiver comes back: everything is delivered and committed.
    slowUp = true;
    const all = [...sent.keys(), ...Array.from({ length: 10 }, (_, i) => `early-${i}`)];
    await waitFor(
      "every alert at the slow receiver",
      () => all.every((id) => perAlert([...slowOk]).has(id)),
      90_000,
    );
    await waitFor(
      "every offset committed",
      async () => await groupLag(n.notifierGroup, n.alerts) === 0,
      30_000,
    );

    // Alerts of the partition a kept all along were taken on once: neither receiver had one twice.
    const kept = [0, 1].filter((p) => assignments.a!.every((ps) => ps.includes(p)));
    assert.equal(kept.length, 1, `a's assignments: ${JSON.stringify(assignments.a)}`);
    const partitionOf = await partitions(n.alerts);
    const keptIds = all.filter((id) => partitionOf.get(id) === kept[0]);
    const toHealthy = perAlert(healthy.received);
    const toSlow = perAlert([...slowOk]);
    const twice = (counts: Map<string, number>) => keptIds.filter((id) => (counts.get(id) ?? 0) > 1);
    print(
      `partition ${kept[0]} kept by a: ${keptIds.length} alerts, notified twice: ` +
        `${twice(toHealthy).length} to the healthy receiver, ${twice(toSlow).length} to the slow one; ` +
        `all partitions: ${healthy.received.length} requests to the healthy receiver for ${all.length} alerts`,
    );
    assert.ok(keptIds.length > 0, "alerts on the kept partition");
    assert.deepEqual(
      twice(toHealthy),
      [],
      "the healthy receiver had none of the kept partition's alerts twice",
    );
    assert.deepEqual(
      twice(toSlow),
      [],
      "the slow receiver delivered none of the kept partition's alerts twice",
    );
  } finally {
    probing = false;
    await probes;
    await producer.disconnect();
    if (b !== null) {
      await b.dispatcher.close();
      await b.source.stop();
    }
    await a.dispatcher.close();
    await a.source.stop();
    await slow.down();
    await healthy.down();
  }
});

/** The partition of each alert on `topic`, by alert id. */
async function partitions(topic: string): Promise<Map<string, number>> {
  const consumer = kafka().consumer({ groupId: `reader-${crypto.randomUUID()}`, maxWaitTimeInMs: 100 });
  const found = new Map<string, number>();
  const admin = kafka().admin();
  await admin.connect();
  const ends = await admin.fetchTopicOffsets(topic);
  await admin.disconnect();
  const total = ends.reduce((s, e) => s + Number(e.high), 0);
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  await consumer.run({
    eachMessage: ({ partition, message }) => {
      found.set(JSON.parse(message.value!.toString()).alert_id, partition);
      return Promise.resolve();
    },
  });
  await waitFor("the whole topic read", () => found.size >= total, 30_000);
  await consumer.disconnect();
  return found;
}
