/**
 * The hostile world against the real broker: generated hostile records interleaved with good ones,
 * under each guarantee, and the input topic deleted and recreated. Every scenario counts records,
 * lost, stalled partitions (lag not 0 a minute after the end) and crashes, and all but records must
 * be 0. Small sizes here; `deno task test:reliability` runs full sizes and prints the counts. The
 * broker's own failures are in `hostile_outage_test.ts`.
 */
import assert from "node:assert/strict";
import { brokers, recreateTopic } from "../../helpers/kafka.ts";
import {
  assertClean,
  countHostile,
  engine,
  EVENTS,
  type HostileCounts,
  hostileRecords,
  hostileSeed,
  hostileTopics,
  joined,
  produceRecords,
  RATE,
} from "./hostile.ts";

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
      assertClean(await countHostile(`hostile records, ${guarantee}`, names, records, [svc], started, seed), [
        svc,
      ]);
    } finally {
      await svc.stop();
    }
  });
}
/**
 * The input topic deleted and recreated, a third of the records before and two thirds after: each
 * partition of the new topic holds more records than its old position, so a consumer that read the
 * new topic from where it stood on the old one would skip its first records. `live`: the engine runs
 * all along. `paused`: the engine is stopped (SIGSTOP) from before the deletion until the new records
 * are written, as a long GC pause or an overloaded machine leaves it, so that it sees no error from
 * the deletion and its next fetch finds the new topic already past its old position. `stopped`: the
 * engine is shut down meanwhile and started again, with its changelog written under the old topic.
 */
async function recreatedScenario(
  name: string,
  mode: "live" | "paused" | "stopped",
  guarantee: "exactly_once" | "at_least_once" = "exactly_once",
): Promise<HostileCounts> {
  const started = Date.now();
  const seed = hostileSeed();
  const { names, env } = await hostileTopics(name, brokers().join(","));
  const records = hostileRecords(name, EVENTS, seed);
  const third = Math.floor(records.length / 3);
  // A pause of several seconds is no failure of the member: the group keeps it.
  const settings = { KAFKA_SESSION_TIMEOUT_MS: "45000", PROCESSING_GUARANTEE: guarantee };
  let svc = engine(env, name, settings);
  try {
    await joined(svc);
    await produceRecords(names.events, records.slice(0, third), RATE).done;
    // The first third is processed before the topic goes: what the deletion itself destroys is not
    // the service's to lose.
    const first = await countHostile("before deletion", names, records.slice(0, third), [svc], started, seed);
    assert.equal(first.lost, 0);
    if (mode === "paused") Deno.kill(svc.child.pid, "SIGSTOP");
    if (mode === "stopped") assert.equal((await svc.stop()).code, 0);
    try {
      await recreateTopic(names.events, 3);
      await produceRecords(names.events, records.slice(third), mode === "paused" ? 100_000 : RATE).done;
    } finally {
      if (mode === "paused") Deno.kill(svc.child.pid, "SIGCONT");
    }
    if (mode === "stopped") {
      svc = engine(env, name, settings);
      await joined(svc);
    }
    const how =
      { live: "", paused: ", engine paused meanwhile", stopped: ", engine stopped meanwhile" }[mode];
    return await countHostile(
      `topic deleted and recreated${how}, ${guarantee}`,
      names,
      records,
      [svc],
      started,
      seed,
    );
  } finally {
    await svc.stop();
  }
}

Deno.test("the input topic deleted and recreated: the service reads the new topic, nothing lost", async () => {
  assertClean(await recreatedScenario("hostile-recreate", "live"));
});

for (const guarantee of ["exactly_once", "at_least_once"] as const) {
  Deno.test(`the input topic recreated while the engine was paused (${guarantee}): the new topic is read from its start`, async () => {
    assertClean(
      await recreatedScenario(
        `hostile-recreate-paused-${guarantee === "exactly_once" ? "eos" : "alo"}`,
        "paused",
        guarantee,
      ),
    );
  });
}

Deno.test("the input topic recreated while the engine was stopped: its state's old offsets are not the new topic's", async () => {
  assertClean(await recreatedScenario("hostile-recreate-stopped", "stopped"));
});
