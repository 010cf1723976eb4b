/**
 * The phases of `deno task bench`, one function per row group of the report, in the order main.ts
 * runs them. Each reads what it needs from the run (`BenchRun`) and returns its part of the report.
 *
 * @module
 */
import type { Admin, Kafka } from "kafkajs";
import { print } from "../../src/log.ts";
import { type Broker, runKafkaTool } from "./broker.ts";
import type { ClientRun } from "./client_ceiling.ts";
import { preload } from "./events.ts";
import { measureLatency, PROBE_RULE } from "./latency.ts";
import { followConsumer, stopProcess } from "./measure.ts";
import { measureNotifyLatency } from "./notify.ts";
import { memoryMiB } from "./proc.ts";
import { summarize } from "./profile.ts";
import { generateRules, rulesFile } from "./rules.ts";
import type { BenchOptions, BenchReport, ServiceRun } from "./types.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const SHIPPED_RULES = ["default.yaml", "aggregates.yaml", "deadman.yaml"];

export const fmt = (n: number): string => Math.round(n).toLocaleString("en-US");

/** What every phase of one bench run shares: the broker, its topics, the service's command line. */
export interface BenchRun {
  opts: BenchOptions;
  /** bench-results/<run>: rules, profiles and the broker's files of this run. */
  runDir: string;
  /** The prefix of this run's topics and groups. */
  prefix: string;
  broker: Broker;
  kafka: Kafka;
  admin: Admin;
  topics: { events: string; alerts: string; dlq: string; aggregates: string; naiveAlerts: string };
  /** The service's environment, shared by every service it starts. */
  env: Record<string, string>;
  /** `deno task start`'s words between `deno` and `main.ts`. */
  startArgs: string[];
  /** The rules every service and the naive consumer run, and how many they are. */
  rulesDir: string;
  ruleCount: number;
  /** Processes still running: stopped by main.ts whatever happens. */
  children: Set<Deno.ChildProcess>;
}

/** The run's topics, created with the options' partition count. */
export async function createBenchTopics(admin: Admin, prefix: string, partitions: number) {
  const topics = {
    events: `${prefix}.events`,
    alerts: `${prefix}.alerts`,
    dlq: `${prefix}.dlq`,
    aggregates: `${prefix}.aggregates`,
    naiveAlerts: `${prefix}.naive-alerts`,
  };
  await admin.createTopics({
    waitForLeaders: true,
    topics: [
      { topic: topics.events, numPartitions: partitions },
      { topic: topics.alerts, numPartitions: partitions },
      { topic: topics.aggregates, numPartitions: partitions },
      { topic: topics.naiveAlerts, numPartitions: partitions },
      { topic: topics.dlq, numPartitions: 1 },
    ],
  });
  return topics;
}

/** The service's own `deno task start` command line, so it runs with exactly the shipped permissions. */
export async function serviceCommand(): Promise<string[]> {
  const config = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`));
  const words = (config.tasks.start as string).split(/\s+/);
  if (words[0] !== "deno" || words.at(-1) !== "main.ts") {
    throw new Error("Unexpected start task in deno.json");
  }
  return words.slice(1, -1);
}

export async function writeRulesDir(dir: string, extra: Record<string, unknown>[][]): Promise<number> {
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

/** Fills the events topic; every phase after this reads it. */
export async function preloadEvents(run: BenchRun): Promise<BenchReport["preload"]> {
  const { opts } = run;
  print(
    `Preloading ${fmt(opts.events)} events (${fmt(opts.sensors)} sensors, ${opts.partitions} partitions)…`,
  );
  const loaded = await preload(run.kafka, run.topics.events, {
    count: opts.events,
    sensors: opts.sensors,
    anomaly: opts.anomaly,
    onProgress: (n) => n % 200_000 === 0 && print(`  preloaded ${fmt(n)}`),
  });
  const result = {
    events: opts.events,
    seconds: loaded.seconds,
    events_per_s: opts.events / loaded.seconds,
    mean_bytes: loaded.bytes / opts.events,
  };
  print(`  ${fmt(result.events_per_s)} events/s, ${result.mean_bytes.toFixed(0)} bytes each`);
  return result;
}

/** The ceiling: Kafka's own ConsumerPerformance on the same topic and the same number of events. */
export async function measureCeiling(run: BenchRun): Promise<BenchReport["ceiling"]> {
  print("Ceiling: Kafka's ConsumerPerformance on the same topic…");
  const perf = await runKafkaTool(run.broker.dir, [
    "org.apache.kafka.tools.ConsumerPerformance",
    "--bootstrap-server",
    run.broker.bootstrap,
    "--topic",
    run.topics.events,
    "--messages",
    String(run.opts.events),
    "--group",
    `${run.prefix}.perf`,
    "--timeout",
    "60000",
  ]);
  const ceiling = parseConsumerPerformance(perf);
  print(`  ${fmt(ceiling.events_per_s)} events/s`);
  return ceiling;
}

/** Each JavaScript client alone on the same topic, no processing. */
export async function measureClients(run: BenchRun): Promise<NonNullable<BenchReport["clients"]>> {
  const out: NonNullable<BenchReport["clients"]> = [];
  for (const client of ["kafkajs", "platformatic"] as const) {
    print(`Client alone: ${client} reading the same topic, no processing…`);
    const c = await clientCeiling(client, run.broker.bootstrap, run.topics.events, run.opts.events);
    out.push(c);
    print(`  ${fmt(c.events_per_s)} events/s, ${c.cpu_us_per_event.toFixed(2)} µs CPU per event`);
  }
  return out;
}

/**
 * The service from the earliest offset until its lag is 0, per guarantee: one instance with each
 * `--workers` count (engine workers in one process), then each further `--instances` count of
 * one-worker processes (scaling out the way it was before workers).
 */
export async function measureServices(run: BenchRun): Promise<ServiceRun[]> {
  const { opts, admin } = run;
  const shapes = [
    ...opts.workers.map((workers) => ({ instances: 1, workers })),
    ...opts.instances.filter((n) => n > 1).map((instances) => ({ instances, workers: 1 })),
  ];
  const out: ServiceRun[] = [];
  for (const { instances, workers } of shapes) {
    for (const guarantee of opts.guarantees) {
      const name = `${guarantee}${instances > 1 ? `, ${instances} instances` : ""}` +
        (workers > 1 ? `, ${workers} workers` : "");
      const group = `${run.prefix}.engine.${guarantee}.${instances}.${workers}`;
      const alerts = `${run.topics.alerts}.${guarantee}.${instances}.${workers}`;
      await admin.createTopics({
        waitForLeaders: true,
        topics: [{ topic: alerts, numPartitions: opts.partitions }],
      });
      print(`Service (${name}): ${run.ruleCount} rules, from the earliest offset until lag is 0…`);
      const profileDir = opts.profile && instances === 1
        ? `${run.runDir}/profile-${guarantee}-${workers}`
        : null;
      const services = Array.from({ length: instances }, () =>
        spawnService(
          run.startArgs,
          {
            ...run.env,
            PROCESSING_GUARANTEE: guarantee,
            CONSUMER_GROUP: group,
            ALERTS_TOPIC: alerts,
            WORKERS: String(workers),
          },
          run.rulesDir,
          profileDir,
        ));
      for (const svc of services) run.children.add(svc);
      const serviceRun = await followConsumer(admin, services, {
        groupId: group,
        topic: run.topics.events,
        total: opts.events,
        limitS: 600,
        // Each process's engine workers are members of the group.
        members: instances * workers,
        onProgress: (n) => print(`  service committed ${fmt(n)}`),
      });
      for (const svc of services) {
        await stopProcess(svc);
        run.children.delete(svc);
      }
      const profile = profileDir === null ? undefined : await readProfile(profileDir);
      out.push({
        ...serviceRun,
        rules: run.ruleCount,
        alerts: await topicSize(admin, alerts),
        guarantee,
        instances,
        workers,
        ...(profile === undefined ? {} : { profile }),
      });
      print(
        `  ${fmt(serviceRun.events_per_s)} events/s, ${serviceRun.cpu_cores.toFixed(2)} cores, ` +
          `peak RSS ${serviceRun.peak_rss_mib.toFixed(0)} MiB`,
      );
    }
  }
  return out;
}

/** A naive consumer (JSON-Logic per event, one send per alert) on the same topic and rules. */
export async function measureNaive(run: BenchRun): Promise<BenchReport["naive"]> {
  const { opts } = run;
  print(`Naive consumer: same topic, same rules, at most ${opts.naiveSeconds} s…`);
  const naive = new Deno.Command("deno", {
    args: [
      "run",
      "--allow-net",
      `--allow-read=${ROOT}`,
      "--allow-env",
      "scripts/bench/naive_consumer.ts",
      run.broker.bootstrap,
      run.topics.events,
      `${run.prefix}.naive`,
      run.topics.naiveAlerts,
      run.rulesDir,
    ],
    cwd: ROOT,
    stdin: "null",
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  run.children.add(naive);
  const naiveRun = await followConsumer(run.admin, naive, {
    groupId: `${run.prefix}.naive`,
    topic: run.topics.events,
    total: opts.events,
    limitS: opts.naiveSeconds,
    onProgress: (n) => print(`  naive committed ${fmt(n)}`),
  });
  await stopProcess(naive);
  run.children.delete(naive);
  print(`  ${fmt(naiveRun.events_per_s)} events/s`);
  return { ...naiveRun, rules: run.ruleCount, alerts: await topicSize(run.admin, run.topics.naiveAlerts) };
}

/** Event → alert latency at each fixed rate, per guarantee, with the service's memory at that rate. */
export async function measureLatencies(run: BenchRun): Promise<BenchReport["latency"]> {
  const { opts, admin } = run;
  const out: BenchReport["latency"] = [];
  const latencyRules = `${run.runDir}/latency-rules`;
  await writeRulesDir(latencyRules, [generateRules(opts.rules, { sensors: opts.sensors }), [PROBE_RULE]]);
  for (const rate of opts.rates) {
    for (const guarantee of opts.guarantees) {
      print(`Latency at ${fmt(rate)} events/s for ${opts.latencySeconds} s (${guarantee})…`);
      const lt = `${run.prefix}.lat${rate}.${guarantee}`;
      await admin.createTopics({
        waitForLeaders: true,
        topics: [lt, `${lt}.alerts`].map((topic) => ({ topic, numPartitions: opts.partitions })),
      });
      const svc = spawnService(
        run.startArgs,
        {
          ...run.env,
          PROCESSING_GUARANTEE: guarantee,
          SENSOR_TOPIC: lt,
          ALERTS_TOPIC: `${lt}.alerts`,
          CONSUMER_GROUP: `${lt}.engine`,
        },
        latencyRules,
        null,
      );
      run.children.add(svc);
      await waitForGroup(admin, `${lt}.engine`);
      const r = await measureLatency(run.kafka, {
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
      run.children.delete(svc);
      out.push({ ...r, guarantee, peak_rss_mib: mem.peak });
      print(`  p50 ${r.produced_ms.p50} ms, p99 ${r.produced_ms.p99} ms, max ${r.produced_ms.max} ms`);
    }
  }
  return out;
}

/** Notification latency to a healthy receiver while another hangs, at 1,000 alerts/s. */
export async function measureNotify(run: BenchRun): Promise<NonNullable<BenchReport["notify"]>> {
  const { opts } = run;
  // 1,000 alerts/s: the rate the notification target is stated at (issue #13), whatever --rates says.
  print(`Notification latency at 1,000 alerts/s for ${opts.latencySeconds} s, one receiver hanging…`);
  const nt = `${run.prefix}.notify`;
  await run.admin.createTopics({
    waitForLeaders: true,
    topics: [{ topic: nt, numPartitions: opts.partitions }],
  });
  const notifyRules = `${run.runDir}/notify-rules`;
  await writeRulesDir(notifyRules, []);
  const nl = await measureNotifyLatency(run.kafka, {
    alertsTopic: nt,
    group: `${nt}.notifiers`,
    rate: 1000,
    seconds: opts.latencySeconds,
    warmupS: Math.min(3, opts.latencySeconds / 3),
    rulesDir: notifyRules,
    startArgs: run.startArgs,
    root: ROOT,
    env: run.env,
  });
  print(
    `  healthy receiver p50 ${nl.healthy_ms.p50} ms, p99 ${nl.healthy_ms.p99} ms, ${nl.delivered} delivered`,
  );
  return nl;
}

async function topicSize(admin: Admin, topic: string): Promise<number> {
  const offsets = await admin.fetchTopicOffsets(topic);
  return offsets.reduce((n, p) => n + Number(p.high) - Number(p.low), 0);
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

async function waitForGroup(admin: Admin, groupId: string): Promise<void> {
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
