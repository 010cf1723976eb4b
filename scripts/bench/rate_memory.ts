/**
 * The service's memory at a steady rate, bounded: the latency phase of `deno task bench` alone (the
 * service, `--role engine`, fed `rate` events/s for `seconds`), with peak RSS and each thread's peak
 * heap. For comparing memory levers (`--env`, `--v8-flags`, see heaps.ts) without the full bench.
 *
 *     KAFKA_BROKERS=127.0.0.1:9092 deno run --allow-net --allow-read=. --allow-write=bench-results \
 *       --allow-run=deno,cat --allow-env scripts/bench/rate_memory.ts 5000 30 exactly_once
 *
 * @module
 */
import { Kafka, logLevel } from "kafkajs";
import { print } from "../../src/log.ts";
import { followHeaps, freePort, levers, printHeaps, startArgs } from "./heaps.ts";
import { measureLatency, PROBE_RULE } from "./latency.ts";
import { stopProcess } from "./measure.ts";
import { writeRulesDir } from "./phases.ts";
import { memoryMiB } from "./proc.ts";
import { generateRules } from "./rules.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const lever = levers(Deno.args);
const [rateArg = "5000", secondsArg = "30", guarantee = "exactly_once"] = lever.args;
const brokers = (Deno.env.get("KAFKA_BROKERS") ?? "127.0.0.1:9092").split(",");
const kafka = new Kafka({ clientId: "bench-rate-memory", brokers, logLevel: logLevel.NOTHING });
const admin = kafka.admin();
await admin.connect();
const t = `bench-rate-${Date.now().toString(36)}`;
await admin.createTopics({
  waitForLeaders: true,
  topics: [t, `${t}.alerts`].map((topic) => ({ topic, numPartitions: 6 })),
});
const rulesDir = `${ROOT}bench-results/${t}-rules`;
await writeRulesDir(rulesDir, [generateRules(100, { sensors: 10_000 }), [PROBE_RULE]]);
const port = freePort();
const child = new Deno.Command("deno", {
  args: [...await startArgs(lever), "main.ts", "--role", "engine", "--rules", rulesDir],
  cwd: ROOT,
  env: {
    KAFKA_BROKERS: brokers.join(","),
    SENSOR_TOPIC: t,
    ALERTS_TOPIC: `${t}.alerts`,
    DLQ_TOPIC: `${t}.dlq`,
    AGGREGATES_TOPIC: `${t}.aggregates`,
    CONSUMER_GROUP: `${t}.engine`,
    SENSOR_PARTITIONS: "6",
    PROCESSING_GUARANTEE: guarantee,
    HTTP_PORT: String(port),
    LOG_LEVEL: "warn",
    NO_COLOR: "1",
    ...lever.env,
  },
  stdin: "null",
  stdout: "null",
  stderr: "inherit",
}).spawn();
const heaps = followHeaps(port);
const deadline = Date.now() + 120_000;
for (;;) {
  const { groups } = await admin.describeGroups([`${t}.engine`]);
  if (groups[0]?.state === "Stable" && groups[0].members.length > 0) break;
  if (Date.now() > deadline) throw new Error("The service did not join its group within 120 s");
  await new Promise((r) => setTimeout(r, 200));
}
// Before any event: the process's floor (the runtime, each isolate, its code), what no setting bounds.
const idle = await memoryMiB(child.pid);
const rate = Number(rateArg);
const seconds = Number(secondsArg);
const r = await measureLatency(kafka, {
  eventsTopic: t,
  alertsTopic: `${t}.alerts`,
  rate,
  seconds,
  warmupS: Math.min(3, seconds / 3),
  sensors: 10_000,
});
const mem = await memoryMiB(child.pid);
const peaks = await heaps.stop();
await stopProcess(child);
await admin.disconnect();
print(
  `${rate} events/s ${guarantee} for ${seconds} s: peak RSS ${mem.peak.toFixed(0)} MiB ` +
    `(${idle.current.toFixed(0)} MiB joined, before any event), ` +
    `p99 ${r.produced_ms.p99} ms, p99.9 ${r.produced_ms.p999} ms`,
);
printHeaps(peaks);
