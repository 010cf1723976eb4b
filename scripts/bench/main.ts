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
import { kafkaVersion, startBroker } from "./broker.ts";
import { stopProcess } from "./measure.ts";
import { machine } from "./proc.ts";
import { measureBacktest } from "./backtest.ts";
import { runMicro } from "./micro.ts";
import {
  type BenchRun,
  createBenchTopics,
  fmt,
  measureCeiling,
  measureClients,
  measureLatencies,
  measureNaive,
  measureNotify,
  measureServices,
  preloadEvents,
  serviceCommand,
  writeRulesDir,
} from "./phases.ts";
import { generateRules } from "./rules.ts";
import { renderMarkdown } from "./report.ts";
import type { BenchOptions, BenchReport } from "./types.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

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
      // Engine workers of a single instance (WORKERS): the service's default (one per core), then one.
      workers: { type: "string", default: `${navigator.hardwareConcurrency},1` },
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
    workers: values.workers.split(",").map((n) => {
      const w = int("workers", n);
      if (!Number.isInteger(w) || w < 1) throw new TypeError(`--workers takes counts ≥ 1, got "${n}"`);
      return w;
    }),
    guarantees: values.guarantees.split(",").map((g) => {
      if (g !== "exactly_once" && g !== "at_least_once") {
        throw new TypeError(`--guarantees takes exactly_once and/or at_least_once, got "${g}"`);
      }
      return g;
    }),
  };
}

export async function bench(args: string[]): Promise<BenchReport> {
  const opts = options(args);
  const started = new Date().toISOString().replace(/[:.]/g, "-");
  const runDir = `${ROOT}bench-results/${started}`;
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
  const broker = await startBroker(`${runDir}/kafka`);
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
    const prefix = `bench-${Date.now().toString(36)}`;
    const topics = await createBenchTopics(admin, prefix, opts.partitions);
    const rulesDir = `${runDir}/rules`;
    const run: BenchRun = {
      opts,
      runDir,
      prefix,
      broker,
      kafka,
      admin,
      topics,
      env: {
        KAFKA_BROKERS: broker.bootstrap,
        SENSOR_TOPIC: topics.events,
        ALERTS_TOPIC: topics.alerts,
        DLQ_TOPIC: topics.dlq,
        AGGREGATES_TOPIC: topics.aggregates,
        CONSUMER_GROUP: `${prefix}.engine`,
        SENSOR_PARTITIONS: String(opts.partitions),
        DLQ_FILE: `${runDir}/dlq.ndjson`,
      },
      startArgs: await serviceCommand(),
      rulesDir,
      ruleCount: await writeRulesDir(rulesDir, [generateRules(opts.rules, { sensors: opts.sensors })]),
      children,
    };

    report.preload = await preloadEvents(run);
    report.ceiling = await measureCeiling(run);
    report.clients = await measureClients(run);
    report.services = await measureServices(run);
    report.service = report.services[0]!;
    print("Backtest: the same events and rules, read from Kafka, nothing produced…");
    report.backtest = await measureBacktest({
      root: ROOT,
      bootstrap: broker.bootstrap,
      topic: topics.events,
      rulesDir,
      serviceEventsPerS: report.service.events_per_s,
    });
    print(
      `  ${fmt(report.backtest.events_per_s)} events/s, ${
        report.backtest.vs_service.toFixed(2)
      }× the service`,
    );
    report.naive = await measureNaive(run);
    report.latency = await measureLatencies(run);
    report.notify = await measureNotify(run);
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
  print(`\n${md}\nWritten: bench-results/${started}.md and .json`);
  return full;
}

if (import.meta.main) {
  // `--render FILE.json` re-renders the markdown of a finished run.
  if (Deno.args[0] === "--render" && Deno.args[1] !== undefined) {
    print(renderMarkdown(JSON.parse(await Deno.readTextFile(Deno.args[1]))));
  } else {
    await bench(Deno.args);
  }
}
