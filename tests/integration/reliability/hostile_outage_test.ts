/**
 * The hostile suite's broker failures, each on a broker of the test's own (`deno task test` runs the
 * `*_outage_test.ts` files beside the others, which share one broker): the service started before
 * its broker, then the broker gone mid-stream; the broker frozen mid-stream. Counted as in
 * `hostile_test.ts`; `deno task test:reliability` runs a 3-minute outage.
 */
import { kafkaSh } from "../../helpers/kafka.ts";
import {
  assertClean,
  countHostile,
  engine,
  EVENTS,
  hostileRecords,
  hostileSeed,
  hostileTopics,
  joined,
  produceRecords,
  RATE,
} from "./hostile.ts";

/** How long the broker stays down in the outage scenario: 3 minutes at full size. */
const OUTAGE_S = Number(Deno.env.get("RELIABILITY_OUTAGE_SECONDS") ?? 20);
/** How long the broker stays frozen: past the client's request timeout and the session timeout. */
const FREEZE_S = Number(Deno.env.get("RELIABILITY_FREEZE_SECONDS") ?? 40);

/** A broker of the test's own, which it may stop; the test helpers point at it meanwhile. */
async function withOwnBroker(fn: (dir: string, address: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "sensor-rules-hostile-broker-" });
  const address = await kafkaSh(dir, "up");
  const previous = Deno.env.get("KAFKA_BROKERS")!;
  Deno.env.set("KAFKA_BROKERS", address);
  try {
    await fn(dir, address);
  } finally {
    Deno.env.set("KAFKA_BROKERS", previous);
    await kafkaSh(dir, "down", "--clean");
  }
}

/**
 * One broker of the test's own for both ways it fails the service: not there at start (long enough for
 * the service's first attempt, with kafkajs's own retries, to give up), then gone for `OUTAGE_S`
 * mid-stream. Besides the hostile records, one sensor stays out of range all along: its episode, open
 * across the outage, fires once (a second firing counts as a duplicate alert).
 */
Deno.test(`the service started before its broker, then the broker gone for ${OUTAGE_S} s mid-stream: it waits, resumes, loses nothing, alerts nothing twice`, async () => {
  await withOwnBroker(async (dir, address) => {
    const started = Date.now();
    const seed = hostileSeed();
    const { names, env } = await hostileTopics("hostile-outage", address);
    await kafkaSh(dir, "down");
    const svc = engine(env, "hostile-outage");
    try {
      await svc.waitForLine(/"msg":"Waiting for Kafka".*"attempt":2/, 90_000);
      await kafkaSh(dir, "start");
      await joined(svc, 180_000);
      const records = hostileRecords("hostile-outage", EVENTS, seed, 5, 10);
      const producing = produceRecords(names.events, records, RATE);
      while (producing.progress() < 0.3) await new Promise((r) => setTimeout(r, 100));
      await kafkaSh(dir, "kill");
      await new Promise((r) => setTimeout(r, OUTAGE_S * 1000));
      await kafkaSh(dir, "start");
      await producing.done;
      assertClean(
        await countHostile(
          `started before the broker, broker down ${OUTAGE_S} s`,
          names,
          records,
          [svc],
          started,
          seed,
          180_000,
        ),
        [svc],
      );
    } finally {
      await svc.stop();
    }
  });
});

/**
 * The broker frozen mid-stream (SIGSTOP: it keeps its connections and answers nothing, as a broker in
 * a long GC pause, a stalled VM or a network that drops packets does) for longer than the client's
 * request timeout (30 s) and the group's session timeout, then resumed: requests in flight, a
 * transaction's commit among them, end without an answer, and the broker finds every session expired
 * when its clock moves on.
 */
Deno.test(`the broker frozen for ${FREEZE_S} s mid-stream (exactly_once): nothing lost, nothing twice, no stall`, async () => {
  await withOwnBroker(async (dir, address) => {
    const started = Date.now();
    const seed = hostileSeed();
    const { names, env } = await hostileTopics("hostile-freeze", address);
    const svc = engine(env, "hostile-freeze");
    let frozen: number | null = null;
    try {
      await joined(svc);
      const records = hostileRecords("hostile-freeze", EVENTS, seed, 5, 10);
      const producing = produceRecords(names.events, records, RATE);
      while (producing.progress() < 0.3) await new Promise((r) => setTimeout(r, 100));
      frozen = Number((await Deno.readTextFile(`${dir}/broker.pid`)).trim());
      Deno.kill(frozen, "SIGSTOP");
      await new Promise((r) => setTimeout(r, FREEZE_S * 1000));
      Deno.kill(frozen, "SIGCONT");
      frozen = null;
      await producing.done;
      assertClean(
        await countHostile(`broker frozen ${FREEZE_S} s`, names, records, [svc], started, seed, 180_000),
        [svc],
      );
    } finally {
      if (frozen !== null) Deno.kill(frozen, "SIGCONT");
      await svc.stop();
    }
  });
});
