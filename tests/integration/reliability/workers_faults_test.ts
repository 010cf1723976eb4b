/**
 * Faults with engine workers (`WORKERS=2`) against the real broker: the whole process SIGKILLed
 * mid-stream, then one of its workers crashing; small sizes here, full sizes in
 * `deno task test:reliability`.
 */
import assert from "node:assert/strict";
import { brokers } from "../../helpers/kafka.ts";
import { assertClean, count, joined, report, service, stream, waitForProgress } from "./faults.ts";

const EVENTS = Number(Deno.env.get("RELIABILITY_EVENTS") ?? 3000);
const RATE = Number(Deno.env.get("RELIABILITY_RATE") ?? 1000);

Deno.test("two engine workers: the process SIGKILLed, then a worker crashing, lose nothing and alert nothing twice", async () => {
  const started = Date.now();
  const s = await stream("workers", EVENTS, RATE, brokers().join(","), 4);
  let svc = service(s, "workers", { WORKERS: "2" });
  try {
    await joined(svc);
    await waitForProgress(s, 0.3);
    await svc.stop("SIGKILL");
    // The same instance id gives each worker its predecessor's transactional id (`-w0`, `-w1`): each
    // fences the open transaction the kill left. Worker 0 then crashes once it has processed a tenth
    // of the stream, with its share of the rest still to come.
    svc = service(s, "workers", { WORKERS: "2", WORKERS_TEST_CRASH: `0:${Math.round(EVENTS / 10)}` });
    await joined(svc);
    await svc.waitForLine(/"msg":"Engine worker crashed: starting it again/, 300_000);
    await svc.waitForLine(/"msg":"Engine worker started again"/, 120_000);
    const c = await count("2 workers: process SIGKILL, then a worker crash", s, started);
    report(c);
    assertClean(c);
    assert.doesNotMatch(svc.stderr(), /Uncaught|^\s+at /m, "the crash said in the log's lines, no trace");
  } finally {
    await svc.stop();
  }
});
