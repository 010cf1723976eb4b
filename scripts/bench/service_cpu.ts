/**
 * The service's CPU per event on a running broker, without `deno task bench`'s own broker and phases:
 * one engine (one thread) catches up on a topic of the bench's traffic; its CPU time (from
 * /proc/PID/stat, through `cat`) between its first commit and its last, per event committed, then its idle CPU for five
 * seconds. `--tree` runs another checkout's service on the same topic (an older commit, for a
 * before/after in one run: alternate them, the machine's noise is larger than most differences).
 *
 * Usage: deno run --allow-net --allow-read --allow-write=/tmp --allow-run=deno,cat --allow-env \
 *   scripts/bench/service_cpu.ts --brokers 127.0.0.1:9092 [--preload 150000 | --topic T] [--tree DIR] \
 *   [--guarantee exactly_once] [--rules DIR]
 *
 * @module
 */
import { parseArgs } from "node:util";
import { Kafka, logLevel } from "kafkajs";
import { print } from "../../src/log.ts";
import { preload } from "./events.ts";
import { cpuSeconds } from "./proc.ts";
import { generateRules, rulesFile } from "./rules.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const SHIPPED = ["default.yaml", "aggregates.yaml", "deadman.yaml"];

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      brokers: { type: "string" },
      topic: { type: "string" },
      preload: { type: "string" },
      tree: { type: "string", default: ROOT },
      guarantee: { type: "string", default: "at_least_once" },
      rules: { type: "string" },
    },
    strict: true,
  });
  if (values.brokers === undefined) throw new TypeError("--brokers is required");
  const kafka = new Kafka({
    clientId: "service-cpu",
    brokers: values.brokers.split(","),
    logLevel: logLevel.NOTHING,
  });
  const admin = kafka.admin();
  await admin.connect();
  let topic = values.topic;
  if (topic === undefined) {
    topic = `service-cpu-${Date.now().toString(36)}`;
    await admin.createTopics({
      waitForLeaders: true,
      topics: [
        ...[topic, `${topic}.alerts`, `${topic}.aggregates`].map((t) => ({ topic: t, numPartitions: 6 })),
        { topic: `${topic}.dlq`, numPartitions: 1 },
      ],
    });
    const count = Number(values.preload ?? "150000");
    await preload(kafka, topic, { count, sensors: 10_000, anomaly: 0.01 });
    print(`Preloaded ${count} events to ${topic}`);
  }
  let rulesDir = values.rules;
  if (rulesDir === undefined) {
    rulesDir = await Deno.makeTempDir({ prefix: "service-cpu-rules-" });
    for (const f of SHIPPED) await Deno.copyFile(`${ROOT}rules/${f}`, `${rulesDir}/${f}`);
    await Deno.writeTextFile(`${rulesDir}/bench-0.yaml`, rulesFile(generateRules(100, { sensors: 10_000 })));
  }
  const total = (await admin.fetchTopicOffsets(topic)).reduce((n, p) => n + Number(p.high), 0);
  const tree = values.tree.replace(/\/$/, "");
  const config = JSON.parse(await Deno.readTextFile(`${tree}/deno.json`));
  // The start task's own flags, with the rules directory readable.
  const flags = (config.tasks.start as string).split(/\s+/).slice(2, -1)
    .map((f) => f === "--allow-read=." ? `--allow-read=.,${rulesDir}` : f);
  const group = `${topic}.cpu-${Date.now().toString(36)}`;
  const child = new Deno.Command("deno", {
    args: ["run", ...flags, "main.ts", "--role", "engine", "--rules", rulesDir],
    cwd: tree,
    env: {
      KAFKA_BROKERS: values.brokers,
      SENSOR_TOPIC: topic,
      ALERTS_TOPIC: `${topic}.alerts`,
      DLQ_TOPIC: `${topic}.dlq`,
      AGGREGATES_TOPIC: `${topic}.aggregates`,
      STATE_TOPIC: `${group}.state`,
      CONSUMER_GROUP: group,
      SENSOR_PARTITIONS: "6",
      PROCESSING_GUARANTEE: values.guarantee,
      WORKERS: "1",
      HTTP_PORT: "0",
      LOG_LEVEL: "warn",
      NO_COLOR: "1",
    },
    stdout: "null",
    stderr: "null",
  }).spawn();
  const committed = async () => {
    const [t] = await admin.fetchOffsets({ groupId: group, topics: [topic] });
    return t!.partitions.reduce((n, p) => n + Math.max(0, Number(p.offset)), 0);
  };
  try {
    let first: { cpu: number; events: number } | null = null;
    let last: { cpu: number; events: number } | null = null;
    // Bounded: ten minutes of polling at most.
    for (let i = 0; i < 6000 && last === null; i++) {
      await new Promise((r) => setTimeout(r, 100));
      const events = await committed();
      if (first === null && events > 0) first = { cpu: await cpuSeconds(child.pid), events };
      if (events >= total) last = { cpu: await cpuSeconds(child.pid), events };
    }
    if (first === null || last === null) throw new Error(`The service did not catch up on "${topic}"`);
    const idleFrom = await cpuSeconds(child.pid);
    await new Promise((r) => setTimeout(r, 5000));
    const idle = (await cpuSeconds(child.pid) - idleFrom) / 5;
    print(
      `${tree} ${values.guarantee}: ${
        (((last.cpu - first.cpu) * 1e6) / (last.events - first.events)).toFixed(2)
      } µs CPU/event over ${last.events - first.events} events; idle ${(idle * 100).toFixed(1)}% of a core`,
    );
  } finally {
    child.kill("SIGINT");
    await child.status;
    await admin.disconnect();
  }
}
