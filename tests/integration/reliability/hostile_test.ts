/**
 * The hostile world against the real broker: generated hostile records interleaved with good ones,
 * under each guarantee; the service started before its broker; the broker gone for a while; the
 * input topic deleted and recreated. Every scenario counts records, lost, stalled partitions (lag
 * not 0 a minute after the end) and crashes, and all but records must be 0. Small sizes here;
 * `deno task test:reliability` runs full sizes (and a 3-minute outage) and prints the counts.
 */
import assert from "node:assert/strict";
import { brokers, createTopics, kafkaSh, withAdmin } from "../../helpers/kafka.ts";
import { type RunningService, startService } from "../../helpers/service.ts";
import {
  countHostile,
  type HostileCounts,
  hostileRecords,
  hostileSeed,
  hostileTopics,
  produceRecords,
  reportHostile,
} from "./hostile.ts";

const EVENTS = Number(Deno.env.get("RELIABILITY_EVENTS") ?? 3000);
const RATE = Number(Deno.env.get("RELIABILITY_RATE") ?? 1000);
/** How long the broker stays down in the outage scenario: 3 minutes at full size. */
const OUTAGE_S = Number(Deno.env.get("RELIABILITY_OUTAGE_SECONDS") ?? 20);

function assertClean(c: HostileCounts): void {
  reportHostile(c);
  const seed = `(replay with FC_SEED=${c.seed})`;
  assert.equal(c.lost, 0, `lost ${c.lost} records ${seed}`);
  assert.equal(c.duplicate_alerts, 0, `${c.duplicate_alerts} duplicate alerts ${seed}`);
  assert.equal(c.stalled_partitions, 0, `${c.stalled_partitions} stalled partitions ${seed}`);
  assert.equal(c.crashes, 0, `${c.crashes} crashes ${seed}`);
}

function engine(env: Record<string, string>, instance: string, extra: Record<string, string> = {}) {
  return startService({ ...env, KAFKA_CLIENT_ID: instance, ...extra }, ["--role", "engine"]);
}

async function joined(svc: RunningService, timeoutMs = 90_000): Promise<void> {
  await svc.waitForLine(/Joined consumer group/, timeoutMs);
}

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

for (const guarantee of ["exactly_once", "at_least_once"] as const) {
  Deno.test(`hostile records among good ones (${guarantee}): nothing lost, no partition stalled, no crash`, async () => {
    const started = Date.now();
    const seed = hostileSeed();
    const name = `hostile-${guarantee === "exactly_once" ? "eos" : "alo"}`;
    const { names, env } = await hostileTopics(name, brokers().join(","));
    const records = hostileRecords(name, EVENTS, seed);
    const svc = engine(env, name, { PROCESSING_GUARANTEE: guarantee });
    try {
      await joined(svc);
      await produceRecords(names.events, records, RATE).done;
      assertClean(await countHostile(`hostile records, ${guarantee}`, names, records, [svc], started, seed));
    } finally {
      await svc.stop();
    }
  });
}

Deno.test("the service started before its broker waits for it, then loses nothing", async () => {
  await withOwnBroker(async (dir, address) => {
    const started = Date.now();
    const seed = hostileSeed();
    const { names, env } = await hostileTopics("hostile-early", address);
    await kafkaSh(dir, "down");
    const svc = engine(env, "hostile-early");
    try {
      // Long enough for kafkajs's own connection retries (about 30 s) to run out.
      await new Promise((r) => setTimeout(r, 40_000));
      await kafkaSh(dir, "start");
      await joined(svc, 180_000);
      const records = hostileRecords("hostile-early", EVENTS, seed);
      await produceRecords(names.events, records, RATE).done;
      assertClean(await countHostile("started before the broker", names, records, [svc], started, seed));
    } finally {
      await svc.stop();
    }
  });
});

Deno.test(`the broker gone for ${OUTAGE_S} s mid-stream: the service waits and resumes, nothing lost`, async () => {
  await withOwnBroker(async (dir, address) => {
    const started = Date.now();
    const seed = hostileSeed();
    const { names, env } = await hostileTopics("hostile-outage", address);
    const records = hostileRecords("hostile-outage", EVENTS, seed);
    const svc = engine(env, "hostile-outage");
    try {
      await joined(svc);
      const producing = produceRecords(names.events, records, RATE);
      while (producing.progress() < 0.3) await new Promise((r) => setTimeout(r, 100));
      await kafkaSh(dir, "kill");
      await new Promise((r) => setTimeout(r, OUTAGE_S * 1000));
      await kafkaSh(dir, "start");
      await producing.done;
      assertClean(
        await countHostile(`broker down ${OUTAGE_S} s`, names, records, [svc], started, seed, 180_000),
      );
    } finally {
      await svc.stop();
    }
  });
});

Deno.test("the input topic deleted and recreated: the service reads the new topic, nothing lost", async () => {
  const started = Date.now();
  const seed = hostileSeed();
  const { names, env } = await hostileTopics("hostile-recreate", brokers().join(","));
  const records = hostileRecords("hostile-recreate", EVENTS, seed);
  const half = Math.floor(records.length / 2);
  const svc = engine(env, "hostile-recreate");
  try {
    await joined(svc);
    await produceRecords(names.events, records.slice(0, half), RATE).done;
    // The first half is processed before the topic goes: what the deletion itself destroys is not
    // the service's to lose.
    const first = await countHostile("before deletion", names, records.slice(0, half), [svc], started, seed);
    assert.equal(first.lost, 0);
    await withAdmin((admin) => admin.deleteTopics({ topics: [names.events] }));
    // Deletion is asynchronous on the broker: recreate once the old topic is gone.
    for (let attempt = 0;; attempt++) {
      try {
        await createTopics([names.events], 3);
        break;
      } catch (err) {
        if (attempt > 60) throw err;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
    await produceRecords(names.events, records.slice(half), RATE).done;
    assertClean(await countHostile("topic deleted and recreated", names, records, [svc], started, seed));
  } finally {
    await svc.stop();
  }
});
