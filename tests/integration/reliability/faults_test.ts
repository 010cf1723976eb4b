/**
 * Faults against the real broker: the service killed three times, instances joining and leaving,
 * partitions added. Small sizes here; `deno task test:reliability` runs full sizes and prints the
 * counts per scenario. The broker killed mid-stream is hostile_outage_test.ts's outage scenario.
 */
import assert from "node:assert/strict";
import { brokers, withAdmin } from "../../helpers/kafka.ts";
import { assertClean, count, joined, report, service, stream, waitForProgress } from "./faults.ts";

const EVENTS = Number(Deno.env.get("RELIABILITY_EVENTS") ?? 3000);
const RATE = Number(Deno.env.get("RELIABILITY_RATE") ?? 1000);

Deno.test("the service SIGKILLed three times mid-stream loses nothing and alerts nothing twice", async () => {
  const started = Date.now();
  const s = await stream("kill3", EVENTS, RATE, brokers().join(","));
  let svc = service(s, "kill3");
  const crashes: string[] = [];
  try {
    await joined(svc);
    for (const at of [0.25, 0.5, 0.75]) {
      await waitForProgress(s, at);
      await svc.stop("SIGKILL");
      crashes.push(svc.stderr());
      // The same instance id fences the killed process's open transaction at once.
      svc = service(s, "kill3");
      await joined(svc);
    }
    const c = await count("service SIGKILL x3", s, started);
    report(c);
    assertClean(c);
  } finally {
    await svc.stop();
  }
});

Deno.test("instances joining and leaving mid-stream move state with partitions: nothing lost or doubled", async () => {
  const started = Date.now();
  const s = await stream("scale", EVENTS, RATE, brokers().join(","), 6);
  const a = service(s, "scale-a");
  const others = [];
  try {
    await joined(a);
    await waitForProgress(s, 0.2);
    const b = service(s, "scale-b");
    others.push(b);
    await joined(b);
    await waitForProgress(s, 0.4);
    const c3 = service(s, "scale-c");
    others.push(c3);
    await joined(c3);
    await waitForProgress(s, 0.6);
    assert.equal((await b.stop("SIGTERM")).code, 0, b.stderr().slice(-2000));
    await waitForProgress(s, 0.8);
    assert.equal((await c3.stop("SIGTERM")).code, 0, c3.stderr().slice(-2000));
    const c = await count("instances join and leave", s, started);
    report(c);
    assertClean(c);
    for (const svc of [a, ...others]) {
      assert.doesNotMatch(svc.stderr(), /Consumer crashed/, "no crash and no restart loop");
    }
  } finally {
    await a.stop();
    for (const o of others) await o.stop();
  }
});

Deno.test("partitions added to the input topic mid-stream: nothing lost or doubled, the new partitions read", async () => {
  const started = Date.now();
  // The stream stops at 40% until the producer's metadata (1 s old at most) knows the new partitions:
  // under load it could otherwise end before, and nothing was written to them (a CI run).
  let added!: () => void;
  const s = await stream("grow", EVENTS, RATE, brokers().join(","), 3, {
    at: 0.4,
    until: new Promise((r) => added = r),
  });
  const svc = service(s, "grow");
  try {
    await joined(svc);
    await waitForProgress(s, 0.4);
    await withAdmin((admin) =>
      admin.createPartitions({ topicPartitions: [{ topic: s.names.events, count: 6 }] })
    );
    await new Promise((r) => setTimeout(r, 1_500));
    added();
    const c = await count("partitions added 3 → 6", s, started);
    report(c);
    assertClean(c);
    const offsets = await withAdmin((admin) => admin.fetchTopicOffsets(s.names.events));
    const written = offsets.filter((o) => o.partition >= 3 && Number(o.high) > 0).length;
    assert.equal(written, 3, "the stream wrote to every new partition");
    await svc.waitForLine(/extending the state changelog/, 30_000);
  } finally {
    await svc.stop();
  }
});
