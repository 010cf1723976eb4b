/**
 * Engine workers side by side: the service (`--role engine`, the start task's permissions) catches up
 * on one preloaded topic once per `WORKERS` count, each in a group of its own, and prints events/s,
 * cores, peak RSS and each thread's peak heap (`sensor_heap_bytes`, read every second). A quick
 * comparison beside `deno task bench`, not one of its rows.
 *
 *     KAFKA_BROKERS=127.0.0.1:9092 deno run --allow-net --allow-read=. --allow-write=bench-results \
 *       --allow-run=deno,cat --allow-env scripts/bench/workers.ts 1000000 1,2 exactly_once
 *
 * `--topic <prefix>` reads `<prefix>.events` of an earlier run instead of preloading again (it must
 * hold the given number of events); `--env K=V,...` adds settings to the service's environment and
 * `--v8-flags <flags>` replaces the start task's `--v8-flags`, to compare levers (see heaps.ts).
 *
 * @module
 */
import { Kafka, logLevel } from "kafkajs";
import { print } from "../../src/log.ts";
import { preload } from "./events.ts";
import { followHeaps, freePort, levers, printHeaps, startArgs } from "./heaps.ts";
import { followConsumer, stopProcess } from "./measure.ts";
import { generateRules, rulesFile } from "./rules.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const lever = levers(Deno.args);
const [eventsArg = "1000000", workersArg = "1,2", guarantee = "exactly_once"] = lever.args;
const events = Number(eventsArg);
const brokers = (Deno.env.get("KAFKA_BROKERS") ?? "127.0.0.1:9092").split(",");
const kafka = new Kafka({ clientId: "bench-workers", brokers, logLevel: logLevel.NOTHING });
const admin = kafka.admin();
await admin.connect();
const reuse = lever.topic;
const t = reuse ?? `bench-workers-${Date.now().toString(36)}`;
if (reuse === undefined) {
  await admin.createTopics({ waitForLeaders: true, topics: [{ topic: `${t}.events`, numPartitions: 6 }] });
  const pre = await preload(kafka, `${t}.events`, { count: events, sensors: 10_000, anomaly: 0.01 });
  print(`Preloaded ${events} events in ${pre.seconds.toFixed(1)} s`);
}
const run = `${Date.now().toString(36)}`;
const extraEnv = lever.env;

// Inside the repository: the start task reads only there.
const rulesDir = `${ROOT}bench-results/${t}-rules`;
await Deno.mkdir(rulesDir, { recursive: true });
for (const f of ["default.yaml", "aggregates.yaml", "deadman.yaml"]) {
  await Deno.copyFile(`${ROOT}rules/${f}`, `${rulesDir}/${f}`);
}
await Deno.writeTextFile(`${rulesDir}/bench-0.yaml`, rulesFile(generateRules(100, { sensors: 10_000 })));
const start = await startArgs(lever);
for (const workers of workersArg.split(",")) {
  const group = `${t}.engine.${workers}.${run}`;
  await admin.createTopics({
    waitForLeaders: true,
    topics: [{ topic: `${t}.alerts.${workers}.${run}`, numPartitions: 6 }],
  });
  const port = freePort();
  const child = new Deno.Command("deno", {
    args: [...start, "main.ts", "--role", "engine", "--rules", rulesDir],
    cwd: ROOT,
    env: {
      KAFKA_BROKERS: brokers.join(","),
      SENSOR_TOPIC: `${t}.events`,
      ALERTS_TOPIC: `${t}.alerts.${workers}.${run}`,
      DLQ_TOPIC: `${t}.dlq`,
      AGGREGATES_TOPIC: `${t}.aggregates`,
      CONSUMER_GROUP: group,
      SENSOR_PARTITIONS: "6",
      PROCESSING_GUARANTEE: guarantee,
      WORKERS: workers,
      HTTP_PORT: String(port),
      LOG_LEVEL: "warn",
      NO_COLOR: "1",
      ...extraEnv,
    },
    stdin: "null",
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  const heaps = followHeaps(port);
  const result = await followConsumer(admin, child, {
    groupId: group,
    topic: `${t}.events`,
    total: events,
    limitS: 600,
    members: Number(workers),
  });
  const peaks = await heaps.stop();
  await stopProcess(child);
  print(
    `WORKERS=${workers} ${guarantee}: ${Math.round(result.events_per_s)} events/s, ` +
      `${result.cpu_cores.toFixed(2)} cores, ${result.cpu_us_per_event.toFixed(1)} µs CPU per event, ` +
      `peak RSS ${result.peak_rss_mib.toFixed(0)} MiB`,
  );
  printHeaps(peaks);
}
await admin.disconnect();
