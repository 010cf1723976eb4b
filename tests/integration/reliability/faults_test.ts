/**
 * Faults against the real broker: the service killed three times, the broker killed for 20 s (3 min at full size),
 * instances joining and leaving. Small sizes here; `deno task test:reliability` runs full sizes and
 * prints the counts per scenario.
 */
import assert from "node:assert/strict";
import { brokers, kafkaSh, withAdmin } from "../../helpers/kafka.ts";
import { assertClean, count, joined, report, service, stream, waitForProgress } from "./faults.ts";

const EVENTS = Number(Deno.env.get("RELIABILITY_EVENTS") ?? 3000);
const RATE = Number(Deno.env.get("RELIABILITY_RATE") ?? 1000);
/** How long the broker stays down: 20 s in CI, 3 minutes in `deno task test:reliability`. */
const OUTAGE_SECONDS = Number(Deno.env.get("RELIABILITY_OUTAGE_SECONDS") ?? 20);

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

Deno.test(`the broker SIGKILLed mid-stream and restarted ${OUTAGE_SECONDS} s later: the service resumes by itself, nothing lost`, async () => {
  const dir = await Deno.makeTempDir({ prefix: "sensor-rules-broker-fault-" });
  const address = await kafkaSh(dir, "up");
  const previous = Deno.env.get("KAFKA_BROKERS")!;
  // The test helpers read KAFKA_BROKERS: point them at this test's own broker, which it kills.
  Deno.env.set("KAFKA_BROKERS", address);
  const started = Date.now();
  let svc;
  try {
    const s = await stream("broker", EVENTS, RATE, address);
    svc = service(s, "broker");
    await joined(svc);
    await waitForProgress(s, 0.3);
    await kafkaSh(dir, "kill");
    await new Promise((r) => setTimeout(r, OUTAGE_SECONDS * 1000));
    await kafkaSh(dir, "start");
    const c = await count(`broker SIGKILL, back after ${OUTAGE_SECONDS} s`, s, started);
    report(c);
    assert.equal(c.lost, 0, `lost ${c.lost} events`);
    assert.equal(c.duplicate_alerts, 0, `${c.duplicate_alerts} duplicate alerts`);
    assert.equal(c.stuck_sensor_alerts, 1);
    assert.doesNotMatch(svc.stderr(), /Uncaught|^\s+at /m, "no uncaught error, no stack trace");
  } finally {
    await svc?.stop();
    Deno.env.set("KAFKA_BROKERS", previous);
    await kafkaSh(dir, "down", "--clean");
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
