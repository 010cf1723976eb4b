/**
 * The exactly-once engine when a partition moves while its owner is in the middle of a transaction:
 * the owner's transaction must not count, whatever it does once it runs again (a zombie).
 */
import assert from "node:assert/strict";
import { createLogger, type Logger } from "../../../src/log.ts";
import { Pipeline } from "../../../src/pipeline.ts";
import { KafkaSource } from "../../../src/source/kafka.ts";
import { RuleRegistry } from "../../../src/rules/registry.ts";
import { exactlyOnceEngine } from "../../../src/state/exactly_once.ts";
import { createKafka, KafkaOutput, kafkaSettingsFromEnv } from "../../../src/transport/kafka.ts";
import { TransactionalOutput } from "../../../src/transport/transactional.ts";
import {
  brokers,
  createCompactedTopic,
  createTopics,
  groupLag,
  kafka,
  produce,
  readTopic,
  uniqueNames,
  waitFor,
  withAdmin,
} from "../../helpers/kafka.ts";
import { event } from "../../helpers/events.ts";

const logger = createLogger({ level: "error", sink: { write: () => {}, pretty: false } });

/** A member's log lines, to see whether its transaction was fenced. */
function capture() {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({
    level: "warn",
    sink: { write: (l) => lines.push(JSON.parse(l)), pretty: false },
  });
  return { lines, logger, fenced: () => lines.some((l) => /fenced/i.test(String(l.msg))) };
}

async function setUp(prefix: string) {
  const n = uniqueNames(prefix);
  const stateTopic = `${n.group}-state`;
  await createTopics([n.events, n.alerts, n.dlq], 1);
  await createCompactedTopic(stateTopic, 1);
  const registry = new RuleRegistry("rules");
  await registry.reload();
  return { n, stateTopic, registry };
}

/** A gate in front of a member's transaction commits: `close` holds the next one until `open`. */
class Gate {
  #held: Promise<void> | null = null;
  #release: () => void = () => {};
  /** Resolves once a commit waits at the closed gate. */
  reached: Promise<void>;
  #reached: () => void = () => {};
  constructor() {
    this.reached = new Promise((r) => this.#reached = r);
  }
  close(): void {
    this.#held = new Promise((r) => this.#release = r);
  }
  open(): void {
    this.#release();
  }
  async pass(): Promise<void> {
    if (this.#held === null) return;
    this.#reached();
    await this.#held;
  }
}

/** An exactly-once engine whose transactions wait at `gate` right before they commit. */
function member(
  ctx: Awaited<ReturnType<typeof setUp>>,
  gate: Gate | null,
  logger: Logger,
  /** The whole member stalls at the gate, its consumer too (it misses its heartbeats). */
  stallConsumer = false,
) {
  const { n, stateTopic, registry } = ctx;
  const client = createKafka(kafkaSettingsFromEnv(brokers(), {}), logger, { retries: 5 });
  return exactlyOnceEngine({
    kafka: client,
    logger,
    groupId: n.group,
    eventsTopic: n.events,
    stateTopic,
    output: new KafkaOutput(client),
    pipeline: (parts) =>
      new Pipeline({
        ruleSet: () => registry.ruleSet,
        topics: { alerts: n.alerts, dlq: n.dlq },
        logger,
        ...parts,
      }),
    source: (parts) => {
      const source = new KafkaSource({
        kafka: client,
        groupId: n.group,
        topic: n.events,
        logger,
        sessionTimeoutMs: 6000,
        ...parts,
        // A batch's handler returns before its transaction ends: a member whose transaction alone
        // stalls keeps its heartbeats going. A stalled process stalls its consumer as well.
        handle: async (records, batch) => {
          await parts.handle(records, batch);
          if (stallConsumer) await gate?.pass();
        },
      });
      // The owner passed its membership check, then stalls (a GC pause, a slow network): the check
      // cannot tell that the partition moved meanwhile, only the broker can.
      const confirm = source.confirmMember.bind(source);
      source.confirmMember = async () => {
        await confirm();
        await gate?.pass();
      };
      return source;
    },
  });
}

/** Events each out of range for its own sensor: one alert each. */
function hot(prefix: string, count: number) {
  return Array.from({ length: count }, (_, i) => {
    const e = event({ event_id: `${prefix}-${i}`, sensor_id: `${prefix}-s${i}`, value: 80 });
    return { key: `temperature:${e.sensor_id}`, value: JSON.stringify(e) };
  });
}

/** Every event's alert once, read with read_committed, and the group's committed offset of partition 0. */
async function outcome(ctx: Awaited<ReturnType<typeof setUp>>, produced: number) {
  const { n } = ctx;
  const alerts = (await readTopic(n.alerts, (v) => v.length >= produced, 20_000)).map((r) =>
    JSON.parse(r.value) as { event_id: string; alert_id: string }
  );
  const offset = await withAdmin(async (admin) => {
    const [t] = await admin.fetchOffsets({ groupId: n.group, topics: [n.events] });
    return t?.partitions.find((p) => p.partition === 0)?.offset;
  });
  return {
    eventIds: alerts.map((x) => x.event_id).sort(),
    alertIds: new Set(alerts.map((x) => x.alert_id)),
    offset,
  };
}

/** Starts `a`, lets it commit the first five events, then holds its transaction of the next five at `gate`. */
async function holdSecondBatch(
  ctx: Awaited<ReturnType<typeof setUp>>,
  a: ReturnType<typeof member>,
  gate: Gate,
) {
  const { n } = ctx;
  await a.start();
  await produce(n.events, hot("first", 5));
  await waitFor(
    "A committed the first events",
    async () => await groupLag(n.group, n.events) === 0,
    60_000,
  );
  gate.close();
  await produce(n.events, hot("second", 5));
  await gate.reached;
}

const ALL = [...hot("first", 5), ...hot("second", 5)].map((r) => JSON.parse(r.value).event_id as string)
  .sort();

Deno.test("exactly-once: the partition's next owner fences a stalled owner's transaction, its alerts count once and the offsets are the new owner's", async () => {
  const ctx = await setUp("eos-zombie");
  const { n } = ctx;
  const gate = new Gate();
  const aLog = capture();
  const a = member(ctx, gate, aLog.logger, true);
  const b = member(ctx, null, logger);
  let aStopped = false;
  try {
    await holdSecondBatch(ctx, a, gate);
    // A's transaction (alerts, changelog, offsets) is open and held: A misses its heartbeats, and
    // its partition moves to B.
    await b.start();
    await waitFor(
      "B processed the held events and committed their offsets",
      async () => b.pipeline.counters.accepted >= 5 && await groupLag(n.group, n.events) === 0,
      90_000,
    );
    // A runs again and commits what it held; stopping waits for that attempt to end.
    gate.open();
    await a.stop();
    aStopped = true;
    const { eventIds, alertIds, offset } = await outcome(ctx, 10);
    assert.deepEqual(eventIds, ALL, "every event's alert once");
    assert.equal(alertIds.size, 10, "no alert twice");
    assert.equal(offset, "10", "the committed offset is B's");
    assert.equal(b.pipeline.counters.accepted, 5, "B processed the held events");
    assert.ok(aLog.fenced(), `A was not fenced: ${JSON.stringify(aLog.lines)}`);
  } finally {
    gate.open();
    if (!aStopped) await a.stop().catch(() => {});
    await b.stop();
  }
});

Deno.test("exactly-once: a producer with the transactional id <group>-<topic>-<partition> fences the partition's open transaction, whatever the instance", async () => {
  const ctx = await setUp("eos-partition-id");
  const { n } = ctx;
  const gate = new Gate();
  const aLog = capture();
  const a = member(ctx, gate, aLog.logger);
  let aStopped = false;
  try {
    await holdSecondBatch(ctx, a, gate);
    // What the partition's next owner does first, from any process.
    const next = new TransactionalOutput(kafka(), {
      transactionalId: `${n.group}-${n.events}-0`,
      groupId: n.group,
      logger,
      onFailure: () => {},
    });
    await next.connect();
    await next.close();
    gate.open();
    // A's batch is processed again by a new producer once the fenced one is gone.
    await waitFor("A committed the held events", async () => await groupLag(n.group, n.events) === 0, 60_000);
    await a.stop();
    aStopped = true;
    const { eventIds, alertIds } = await outcome(ctx, 10);
    assert.deepEqual(eventIds, ALL, "every event's alert once");
    assert.equal(alertIds.size, 10, "no alert twice");
    assert.ok(aLog.fenced(), `A was not fenced: ${JSON.stringify(aLog.lines)}`);
  } finally {
    gate.open();
    if (!aStopped) await a.stop().catch(() => {});
  }
});
