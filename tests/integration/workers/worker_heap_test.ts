/**
 * `WORKER_HEAP_MIB` against the real broker: an engine worker that fills its heap reaches its own
 * limit and ends alone (not the process), the pool starts another, its partitions recover from the
 * changelog, and no alert is lost or repeated. `/metrics` shows each worker's heap.
 */
import assert from "node:assert/strict";
import { Partitioners } from "kafkajs";
import type { SensorAlert } from "../../../src/contract/schemas.ts";
import {
  createTopics,
  groupLag,
  kafka,
  readTopic,
  topicEnv,
  uniqueNames,
  waitFor,
} from "../../helpers/kafka.ts";
import { scrape } from "../../helpers/metrics.ts";
import { httpUrl, startService } from "../../helpers/service.ts";

const RULES = `rules:
  - id: too-hot
    sensor_type: temperature
    threshold: { max: 35 }
    priority: high
`;

const PARTITIONS = 4;
const SENSORS = Array.from({ length: 2 * PARTITIONS }, (_, i) => `h-${i}`);
let seq = 0;

/** `rounds` events per sensor of the given value, each on the sensor's partition (i mod PARTITIONS). */
async function send(topic: string, rounds: number, value: number): Promise<void> {
  const producer = kafka().producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  try {
    const messages = [];
    for (let r = 0; r < rounds; r++) {
      for (const [i, sensor_id] of SENSORS.entries()) {
        const event = {
          event_id: `hp-${++seq}`,
          sensor_id,
          sensor_type: "temperature",
          value,
          unit: "°C",
          timestamp: new Date(Date.now() - 60_000 + seq).toISOString(),
        };
        messages.push({
          key: `temperature:${sensor_id}`,
          value: JSON.stringify(event),
          partition: i % PARTITIONS,
        });
      }
    }
    await producer.send({ topic, acks: -1, messages });
  } finally {
    await producer.disconnect();
  }
}

Deno.test("an engine worker that reaches WORKER_HEAP_MIB is restarted alone: the process lives on, no alert lost or repeated", async () => {
  const n = uniqueNames("heap");
  await createTopics([n.events], PARTITIONS);
  await createTopics([n.alerts, n.dlq, n.aggregates], 2);
  await Deno.mkdir("tests/artifacts", { recursive: true });
  const rulesDir = await Deno.makeTempDir({ dir: "tests/artifacts", prefix: "rules-" });
  await Deno.writeTextFile(`${rulesDir}/rules.yaml`, RULES);
  // Worker 0 owns two of the four partitions: 5 rounds give it 20 events, past the 10 that start its leak.
  const service = startService({
    ...topicEnv(n),
    RULES_DIR: rulesDir,
    SENSOR_PARTITIONS: String(PARTITIONS),
    WORKERS: "2",
    WORKER_HEAP_MIB: "64",
    WORKERS_TEST_CRASH: "0:10:heap",
    KAFKA_SESSION_TIMEOUT_MS: "6000",
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

    await send(n.events, 5, 20);
    await service.waitForLine(/Out of heap: the worker reached WORKER_HEAP_MIB \\"64\\"/, 120_000);
    await service.waitForLine(/"msg":"Engine worker started again"/, 120_000);
    // Every sensor goes hot once: one firing alert each, from whichever worker owns it now.
    await send(n.events, 5, 40);
    await waitFor("the events committed", async () => (await groupLag(n.group, n.events)) === 0, 120_000);
    const records = await readTopic(n.alerts, (values) => values.length >= SENSORS.length);
    const alerts = records.map((r) => JSON.parse(r.value) as SensorAlert);
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
    await Deno.remove(rulesDir, { recursive: true }).catch(() => {});
  }
});
