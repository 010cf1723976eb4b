/**
 * `WORKER_HEAP_MIB` against the real broker: an engine worker that fills its heap reaches its own
 * limit and ends alone (not the process), the pool starts another, its partitions recover from the
 * changelog, and no alert is lost or repeated. `/metrics` shows each worker's heap.
 */
import assert from "node:assert/strict";
import { groupLag, readTopic, waitFor } from "../../helpers/kafka.ts";
import { scrape } from "../../helpers/metrics.ts";
import { httpUrl } from "../../helpers/service.ts";
import { alertsOf, Fleet, startWorkers } from "./fixture.ts";

const fleet = new Fleet("h");
const SENSORS = fleet.sensors;

Deno.test("an engine worker that reaches WORKER_HEAP_MIB is restarted alone: the process lives on, no alert lost or repeated", async () => {
  // Worker 0 owns two of the four partitions: 5 rounds give it 20 events, past the 10 that start its leak.
  const { n, service, cleanup } = await startWorkers("heap", {
    WORKER_HEAP_MIB: "64",
    WORKERS_TEST_CRASH: "0:10:heap",
  });
  let stopped = false;
  try {
    const base = await httpUrl(service, 60_000);
    await waitFor(
      "/readyz to answer 200",
      async () => (await fetch(`${base}/readyz`)).status === 200,
      90_000,
    );
    const heaps = await scrape(base);
    const rss = heaps.value("sensor_process_resident_bytes") ?? 0;
    const mainHeap = heaps.value("sensor_heap_bytes", { thread: "main", kind: "total" }) ?? Infinity;
    assert.ok(rss > mainHeap, `the process's RSS ${rss} holds the main thread's heap ${mainHeap}`);
    for (const thread of ["main", "engine-worker-0", "engine-worker-1"]) {
      assert.ok((heaps.value("sensor_heap_bytes", { thread, kind: "used" }) ?? 0) > 0, `${thread}'s heap`);
    }

    await fleet.send(n.events, 5, () => 20);
    await service.waitForLine(/Out of heap: the worker reached WORKER_HEAP_MIB \\"64\\"/, 120_000);
    await service.waitForLine(/"msg":"Engine worker started again"/, 120_000);
    // Every sensor goes hot once: one firing alert each, from whichever worker owns it now.
    await fleet.send(n.events, 5, () => 40);
    await waitFor("the events committed", async () => (await groupLag(n.group, n.events)) === 0, 120_000);
    const records = await readTopic(n.alerts, (values) => values.length >= SENSORS.length);
    const alerts = alertsOf(records);
    const firing = alerts.filter((a) => a.state === "firing" && !a.acknowledged).map((a) => a.sensor_id);
    assert.deepEqual(
      firing.sort(),
      [...SENSORS].sort(),
      "one firing alert per sensor, none lost, none repeated",
    );

    const status = await service.stop("SIGTERM");
    stopped = true;
    assert.equal(status.code, 0, service.stderr().slice(-3000));
  } finally {
    if (!stopped) await service.stop("SIGKILL");
    await cleanup();
  }
});
