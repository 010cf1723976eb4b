/**
 * `deno task bench`: micro benchmarks, then end to end through a real broker (a throwaway local one
 * unless KAFKA_BROKERS is set) — the service, Kafka's own consumer (the ceiling) and a naive consumer
 * on the same topic, and event → alert latency at fixed rates. Writes bench-results/<run>.{md,json}.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { Kafka, logLevel } from "kafkajs";
import { print } from "../../src/log.ts";
import { noDelaySocketFactory } from "../../src/transport/kafka.ts";
import { type Broker, kafkaVersion, runKafkaTool, startBroker } from "./broker.ts";
import type { ClientRun } from "./client_ceiling.ts";
import { preload } from "./events.ts";
import { measureLatency, PROBE_RULE } from "./latency.ts";
import { followConsumer, stopProcess } from "./measure.ts";
import { measureNotifyLatency } from "./notify.ts";
import { machine, memoryMiB } from "./proc.ts";
import { summarize } from "./profile.ts";
import { runMicro } from "./micro.ts";
import { generateRules, rulesFile } from "./rules.ts";
import { renderMarkdown } from "./report.ts";
import type { BenchOptions, BenchReport, ServiceRun } from "./types.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const SHIPPED_RULES = ["default.yaml", "aggregates.yaml", "deadman.yaml"];

function options(args: string[]): BenchOptions {
  const { values } = parseArgs({
    args,
    options: {
      events: { type: "string", default: "1000000" },
      sensors: { type: "string", default: "10000" },
      partitions: { type: "string", default: "6" },
      rules: { type: "string", default: "100" },
      anomaly: { type: "string", default: "0.01" },
      rates: { type: "string", default: "1000,5000,20000" },
      "latency-seconds": { type: "string", default: "15" },
      "naive-seconds": { type: "string", default: "30" },
      "no-micro": { type: "boolean", default: false },
      profile: { type: "boolean", default: false },
      guarantees: { type: "string", default: "exactly_once,at_least_once" },
      instances: { type: "string", default: "1,2" },
      // Engine workers per service process (WORKERS); unset: the service's default, one per core.
      workers: { type: "string", default: "" },
    },
    strict: true,
  });
  const int = (name: string, s: string) => {
    const n = Number(s);
    if (!Number.isFinite(n) || n < 0) {
      throw new TypeError(`--${name} must be a non-negative number, got "${s}"`);
    }
    return n;
  };
  return {
    events: int("events", values.events),
    sensors: int("sensors", values.sensors),
    partitions: int("partitions", values.partitions),
    rules: int("rules", values.rules),
    anomaly: int("anomaly", values.anomaly),
    rates: values.rates.split(",").map((r) => int("rates", r)),
    latencySeconds: int("latency-seconds", values["latency-seconds"]),
    naiveSeconds: int("naive-seconds", values["naive-seconds"]),
    micro: !values["no-micro"],
    profile: values.profile,
    instances: values.instances.split(",").map((n) => {
      const i = int("instances", n);
      if (!Number.isInteger(i) || i < 1) throw new TypeError(`--instances takes counts ≥ 1, got "${n}"`);
      return i;
    }),
    workers: values.workers === "" ? null : int("workers", values.workers),
    guarantees: values.guarantees.split(",").map((g) => {
      if (g !== "exactly_once" && g !== "at_least_once") {
        throw new TypeError(`--guarantees takes exactly_once and/or at_least_once, got "${g}"`);
      }
      return g;
    }),
  };
}

/** The service's own `deno task start` command line, so it runs with exactly the shipped permissions. */
async function serviceCommand(): Promise<string[]> {
  const config = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`));
  const words = (config.tasks.start as string).split(/\s+/);
  if (words[0] !== "deno" || words.at(-1) !== "main.ts") {
    throw new Error("Unexpected start task in deno.json");
  }
  return words.slice(1, -1);
}

async function writeRulesDir(dir: string, extra: Record<string, unknown>[][]): Promise<number> {
  await Deno.mkdir(dir, { recursive: true });
  for (const f of SHIPPED_RULES) await Deno.copyFile(`${ROOT}rules/${f}`, `${dir}/${f}`);
  let n = 0;
  for (const [i, rules] of extra.entries()) {
    await Deno.writeTextFile(`${dir}/bench-${i}.yaml`, rulesFile(rules));
    n += rules.length;
  }
  return n + 6;
}

function spawnService(
  startArgs: string[],
  env: Record<string, string>,
  rulesDir: string,
  profileDir: string | null,
): Deno.ChildProcess {
  const [run, ...flags] = startArgs;
  return new Deno.Command("deno", {
    args: [
      run!,
      ...(profileDir === null ? [] : ["--cpu-prof", `--cpu-prof-dir=${profileDir}`]),
      ...flags,
      "main.ts",
      "--role",
      "engine",
      "--rules",
      rulesDir,
    ],
    cwd: ROOT,
    env: { ...env, HTTP_PORT: "0", LOG_LEVEL: "warn", NO_COLOR: "1" },
    stdin: "null",
    stdout: "null",
    stderr: "inherit",
  }).spawn();
}

async function topicSize(admin: ReturnType<Kafka["admin"]>, topic: string): Promise<number> {
  const offsets = await admin.fetchTopicOffsets(topic);
  return offsets.reduce((n, p) => n + Number(p.high) - Number(p.low), 0);
}

const fmt = (n: number) => Math.round(n).toLocaleString("en-US");

export async function bench(args: string[]): Promise<BenchReport> {
  const opts = options(args);
  const run = new Date().toISOString().replace(/[:.]/g, "-");
  const runDir = `${ROOT}bench-results/${run}`;
  await Deno.mkdir(runDir, { recursive: true });
  const config = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`));
  const report: Partial<BenchReport> = {
    started_at: new Date().toISOString(),
    command: `deno task bench${args.length > 0 ? " " + args.join(" ") : ""}`,
    machine: await machine(),
    versions: {
      deno: Deno.version.deno,
      v8: Deno.version.v8,
      kafkajs: String(config.imports.kafkajs).replace(/^npm:kafkajs@/, ""),
      kafka: await kafkaVersion(),
    },
    options: opts,
  };

  report.micro = opts.micro ? await runMicro((line) => print(line)) : null;

  print("Starting the broker…");
  const broker: Broker = await startBroker(`${runDir}/kafka`);
  const stopBroker = () => {
    broker.close().finally(() => Deno.exit(130));
  };
  Deno.addSignalListener("SIGINT", stopBroker);
  const children = new Set<Deno.ChildProcess>();
  try {
    const kafka = new Kafka({
      clientId: "bench",
      brokers: broker.bootstrap.split(","),
      logLevel: logLevel.NOTHING,
      // The measuring clients must not add Nagle's delay to what they measure.
      socketFactory: noDelaySocketFactory,
    });
    const admin = kafka.admin();
    await admin.connect();
    const t = `bench-${Date.now().toString(36)}`;
    const topics = {
      events: `${t}.events`,
      alerts: `${t}.alerts`,
      dlq: `${t}.dlq`,
      aggregates: `${t}.aggregates`,
      naiveAlerts: `${t}.naive-alerts`,
    };
    await admin.createTopics({
      waitForLeaders: true,
      topics: [
        { topic: topics.events, numPartitions: opts.partitions },
        { topic: topics.alerts, numPartitions: opts.partitions },
        { topic: topics.aggregates, numPartitions: opts.partitions },
        { topic: topics.naiveAlerts, numPartitions: opts.partitions },
        { topic: topics.dlq, numPartitions: 1 },
      ],
    });

    print(
      `Preloading ${fmt(opts.events)} events (${fmt(opts.sensors)} sensors, ${opts.partitions} partitions)…`,
    );
    const loaded = await preload(kafka, topics.events, {
      count: opts.events,
      sensors: opts.sensors,
      anomaly: opts.anomaly,
      onProgress: (n) => n % 200_000 === 0 && print(`  preloaded ${fmt(n)}`),
    });
    report.preload = {
      events: opts.events,
      seconds: loaded.seconds,
      events_per_s: opts.events / loaded.seconds,
      mean_bytes: loaded.bytes / opts.events,
    };
    print(
      `  ${fmt(report.preload.events_per_s)} events/s, ${report.preload.mean_bytes.toFixed(0)} bytes each`,
    );

    print("Ceiling: Kafka's ConsumerPerformance on the same topic…");
    const perf = await runKafkaTool(broker.dir, [
      "org.apache.kafka.tools.ConsumerPerformance",
      "--bootstrap-server",
      broker.bootstrap,
      "--topic",
      topics.events,
      "--messages",
      String(opts.events),
      "--group",
      `${t}.perf`,
      "--timeout",
      "60000",
    ]);
    report.ceiling = parseConsumerPerformance(perf);
    print(`  ${fmt(report.ceiling.events_per_s)} events/s`);

    report.clients = [];
    for (const client of ["kafkajs", "platformatic"] as const) {
      print(`Client alone: ${client} reading the same topic, no processing…`);
      const c = await clientCeiling(client, broker.bootstrap, topics.events, opts.events);
      report.clients.push(c);
      print(`  ${fmt(c.events_per_s)} events/s, ${c.cpu_us_per_event.toFixed(2)} µs CPU per event`);
    }

    const startArgs = await serviceCommand();
    const rulesDir = `${runDir}/rules`;
    const ruleCount = await writeRulesDir(rulesDir, [generateRules(opts.rules, { sensors: opts.sensors })]);
    const env = {
      KAFKA_BROKERS: broker.bootstrap,
      SENSOR_TOPIC: topics.events,
      ALERTS_TOPIC: topics.alerts,
      DLQ_TOPIC: topics.dlq,
      AGGREGATES_TOPIC: topics.aggregates,
      CONSUMER_GROUP: `${t}.engine`,
      SENSOR_PARTITIONS: String(opts.partitions),
      DLQ_FILE: `${runDir}/dlq.ndjson`,
      ...(opts.workers === null ? {} : { WORKERS: String(opts.workers) }),
    };

    report.services = [];
    for (const instances of opts.instances) {
      for (const guarantee of opts.guarantees) {
        const name = `${guarantee}${instances > 1 ? `, ${instances} instances` : ""}`;
        const group = `${t}.engine.${guarantee}.${instances}`;
        const alerts = `${topics.alerts}.${guarantee}.${instances}`;
        await admin.createTopics({
          waitForLeaders: true,
          topics: [{ topic: alerts, numPartitions: opts.partitions }],
        });
        print(`Service (${name}): ${ruleCount} rules, from the earliest offset until lag is 0…`);
        const services = Array.from({ length: instances }, (_, i) =>
          spawnService(
            startArgs,
            {
              ...env,
              PROCESSING_GUARANTEE: guarantee,
              CONSUMER_GROUP: group,
              ALERTS_TOPIC: alerts,
              INSTANCE_ID: `bench-${i}`,
            },
            rulesDir,
            opts.profile && instances === 1 ? `${runDir}/profile-${guarantee}` : null,
          ));
        for (const svc of services) children.add(svc);
        const serviceRun = await followConsumer(admin, services, {
          groupId: group,
          topic: topics.events,
          total: opts.events,
          limitS: 600,
          // Each process's engine workers are members of the group (the service's default: one per core).
          members: instances * (opts.workers ?? navigator.hardwareConcurrency),
          onProgress: (n) => print(`  service committed ${fmt(n)}`),
        });
        for (const svc of services) {
          await stopProcess(svc);
          children.delete(svc);
        }
        const profile = opts.profile && instances === 1
          ? await readProfile(`${runDir}/profile-${guarantee}`)
          : undefined;
        report.services.push({
          ...serviceRun,
          rules: ruleCount,
          alerts: await topicSize(admin, alerts),
          guarantee,
          instances,
          ...(profile === undefined ? {} : { profile }),
        });
        print(
          `  ${fmt(serviceRun.events_per_s)} events/s, ${serviceRun.cpu_cores.toFixed(2)} cores, ` +
            `peak RSS ${serviceRun.peak_rss_mib.toFixed(0)} MiB`,
        );
      }
    }
    report.service = report.services[0]!;

    print(`Naive consumer: same topic, same rules, at most ${opts.naiveSeconds} s…`);
    const naive = new Deno.Command("deno", {
      args: [
        "run",
        "--allow-net",
        `--allow-read=${ROOT}`,
        "--allow-env",
        "scripts/bench/naive_consumer.ts",
        broker.bootstrap,
        topics.events,
        `${t}.naive`,
        topics.naiveAlerts,
        rulesDir,
      ],
      cwd: ROOT,
      stdin: "null",
      stdout: "null",
      stderr: "inherit",
    }).spawn();
    children.add(naive);
    const naiveRun = await followConsumer(admin, naive, {
      groupId: `${t}.naive`,
      topic: topics.events,
      total: opts.events,
      limitS: opts.naiveSeconds,
      onProgress: (n) => print(`  naive committed ${fmt(n)}`),
    });
    await stopProcess(naive);
    children.delete(naive);
    report.naive = { ...naiveRun, rules: ruleCount, alerts: await topicSize(admin, topics.naiveAlerts) };
    print(`  ${fmt(naiveRun.events_per_s)} events/s`);

    report.latency = [];
    const latencyRules = `${runDir}/latency-rules`;
    await writeRulesDir(latencyRules, [generateRules(opts.rules, { sensors: opts.sensors }), [PROBE_RULE]]);
    for (const rate of opts.rates) {
      for (const guarantee of opts.guarantees) {
        print(`Latency at ${fmt(rate)} events/s for ${opts.latencySeconds} s (${guarantee})…`);
        const lt = `${t}.lat${rate}.${guarantee}`;
        await admin.createTopics({
          waitForLeaders: true,
          topics: [lt, `${lt}.alerts`].map((topic) => ({ topic, numPartitions: opts.partitions })),
        });
        const svc = spawnService(
          startArgs,
          {
            ...env,
            PROCESSING_GUARANTEE: guarantee,
            SENSOR_TOPIC: lt,
            ALERTS_TOPIC: `${lt}.alerts`,
            CONSUMER_GROUP: `${lt}.engine`,
          },
          latencyRules,
          null,
        );
        children.add(svc);
        await waitForGroup(admin, `${lt}.engine`);
        const r = await measureLatency(kafka, {
          eventsTopic: lt,
          alertsTopic: `${lt}.alerts`,
          rate,
          seconds: opts.latencySeconds,
          warmupS: Math.min(3, opts.latencySeconds / 3),
          sensors: opts.sensors,
        });
        // The service's memory at a steady production rate, with state for the whole fleet.
        const mem = await memoryMiB(svc.pid);
        await stopProcess(svc);
        children.delete(svc);
        report.latency.push({ ...r, guarantee, peak_rss_mib: mem.peak });
        print(`  p50 ${r.produced_ms.p50} ms, p99 ${r.produced_ms.p99} ms, max ${r.produced_ms.max} ms`);
      }
    }
    // 1,000 alerts/s: the rate the notification target is stated at (issue #13), whatever --rates says.
    print(`Notification latency at 1,000 alerts/s for ${opts.latencySeconds} s, one receiver hanging…`);
    const nt = `${t}.notify`;
    await admin.createTopics({
      waitForLeaders: true,
      topics: [{ topic: nt, numPartitions: opts.partitions }],
    });
    const notifyRules = `${runDir}/notify-rules`;
    await writeRulesDir(notifyRules, []);
    report.notify = await measureNotifyLatency(kafka, {
      alertsTopic: nt,
      group: `${nt}.notifiers`,
      rate: 1000,
      seconds: opts.latencySeconds,
      warmupS: Math.min(3, opts.latencySeconds / 3),
      rulesDir: notifyRules,
      startArgs,
      root: ROOT,
      env,
    });
    const nl = report.notify;
    print(
      `  healthy receiver p50 ${nl.healthy_ms.p50} ms, p99 ${nl.healthy_ms.p99} ms, ${nl.delivered} delivered`,
    );
    await admin.disconnect();
  } finally {
    for (const c of children) await stopProcess(c, 5000);
    print("Stopping the broker…");
    await broker.close();
    Deno.removeSignalListener("SIGINT", stopBroker);
  }
  const full = report as BenchReport;
  full.ratios = {
    service_vs_ceiling: full.service.events_per_s / full.ceiling.events_per_s,
    service_vs_naive: full.service.events_per_s / full.naive.events_per_s,
  };
  const md = renderMarkdown(full);
  await Deno.writeTextFile(`${runDir}.json`, JSON.stringify(full, null, 2) + "\n");
  await Deno.writeTextFile(`${runDir}.md`, md);
  print(`\n${md}\nWritten: bench-results/${run}.md and .json`);
  return full;
}

/** The summary of the one .cpuprofile a service run wrote into `dir` (V8 writes it on exit). */
async function readProfile(dir: string): Promise<ServiceRun["profile"]> {
  for await (const entry of Deno.readDir(dir)) {
    if (!entry.name.endsWith(".cpuprofile")) continue;
    const s = summarize(JSON.parse(await Deno.readTextFile(`${dir}/${entry.name}`)));
    const share = ([name, ms]: [string, number]): [string, number] => [name, ms / s.total_ms];
    return {
      busy_s: s.total_ms / 1000,
      by_area: s.byArea.slice(0, 12).map(share),
      by_function: s.byFunction.slice(0, 15).map(share),
    };
  }
  throw new Error(`No .cpuprofile in ${dir}`);
}

/** Runs client_ceiling.ts in its own process; its peak RSS is read before it is stopped. */
async function clientCeiling(
  client: ClientRun["client"],
  bootstrap: string,
  topic: string,
  count: number,
): Promise<ClientRun & { peak_rss_mib: number }> {
  const child = new Deno.Command("deno", {
    // @platformatic/kafka's `debug` dependency lists the whole environment, and it reads a wasm file
    // from Deno's npm cache: this measurement alone runs with unscoped env and read access.
    args: [
      "run",
      "--allow-net",
      "--allow-env",
      "--allow-read",
      "scripts/bench/client_ceiling.ts",
      client,
      bootstrap,
      topic,
      String(count),
    ],
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), 300_000);
  try {
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    while (!text.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`${client}: the client ceiling exited without a result`);
      text += value;
    }
    const run = JSON.parse(text.slice(0, text.indexOf("\n"))) as ClientRun;
    const mem = await memoryMiB(child.pid);
    reader.releaseLock();
    await stopProcess(child, 10_000);
    await child.stdout.cancel().catch(() => {});
    return { ...run, peak_rss_mib: mem.peak };
  } finally {
    clearTimeout(timer);
  }
}

async function waitForGroup(admin: ReturnType<Kafka["admin"]>, groupId: string): Promise<void> {
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    const { groups } = await admin.describeGroups([groupId]);
    if (groups[0]?.state === "Stable" && groups[0].members.length > 0) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`The service did not join group ${groupId} within 120 s`);
}

/** ConsumerPerformance prints a CSV header and one line; fetch.nMsg.sec leaves out the group join. */
export function parseConsumerPerformance(out: string): BenchReport["ceiling"] {
  const lines = out.trim().split("\n").filter((l) => l.includes(","));
  const header = lines.findIndex((l) => l.includes("nMsg.sec"));
  if (header < 0 || lines[header + 1] === undefined) {
    throw new Error(`Cannot read ConsumerPerformance output: ${out}`);
  }
  const names = lines[header]!.split(",").map((s) => s.trim());
  const values = lines[header + 1]!.split(",").map((s) => s.trim());
  const get = (name: string) => Number(values[names.indexOf(name)]);
  return {
    events_per_s: get("fetch.nMsg.sec"),
    mb_per_s: get("fetch.MB.sec"),
    seconds: get("fetch.time.ms") / 1000,
  };
}

if (import.meta.main) {
  // `--render FILE.json` re-renders the markdown of a finished run.
  if (Deno.args[0] === "--render" && Deno.args[1] !== undefined) {
    print(renderMarkdown(JSON.parse(await Deno.readTextFile(Deno.args[1]))));
  } else {
    await bench(Deno.args);
  }
}
