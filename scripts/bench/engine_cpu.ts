/**
 * The engine's CPU per event without a broker: the bench's traffic (10,000 sensors, 1% anomalies,
 * ~300-byte events) and rules (the shipped ones and 100 generated), in batches per partition as the
 * Kafka source hands them over, through the Pipeline of at-least-once (or, with `--checkpoint`, the
 * one of exactly-once with its changelog records). Its figure is what the broker's noise hides in
 * `deno task bench`; run it with `--cpu-prof` and `profile.ts` to see where the time goes.
 *
 * Usage: deno run --allow-read --allow-env scripts/bench/engine_cpu.ts [--events N] [--runs N] [--checkpoint]
 *
 * @module
 */
import process from "node:process";
import { parseArgs } from "node:util";
import type { InputRecord } from "../../src/contract/records.ts";
import { createLogger, print } from "../../src/log.ts";
import { Pipeline } from "../../src/pipeline.ts";
import { parseRuleFile } from "../../src/rules/load.ts";
import { RuleSet } from "../../src/rules/ruleset.ts";
import { changelogRecords } from "../../src/state/format.ts";
import type { Output, OutRecord } from "../../src/transport/output.ts";
import { partitionOf } from "../../src/transport/partitioner.ts";
import { traffic } from "./events.ts";
import { generateRules, rulesFile } from "./rules.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const SHIPPED = ["default.yaml", "aggregates.yaml", "deadman.yaml"];

/** The bench's rule set: the shipped rules and `generated` rules of the bench's generator. */
export function benchRuleSet(generated = 100, sensors = 10_000): RuleSet {
  const files: [string, string][] = SHIPPED.map((f) => [f, Deno.readTextFileSync(`${ROOT}rules/${f}`)]);
  files.push(["bench-0.yaml", rulesFile(generateRules(generated, { sensors }))]);
  const rules = files.flatMap(([file, text]) => {
    const r = parseRuleFile(file, text);
    if (r.problems.length > 0) throw new Error(r.problems.map((p) => p.message).join("; "));
    return r.rules;
  });
  return new RuleSet(rules);
}

/**
 * The bench's traffic as the source delivers it: batches of one partition each (`batch` records),
 * event time one millisecond apart from `start` on, as `preload` writes it. Endless: `next()` gives
 * the next full batch.
 */
export function benchStream(
  opts: { partitions?: number; batch?: number; sensors?: number; anomaly?: number; start?: number } = {},
): { next(): InputRecord[] } {
  const partitions = opts.partitions ?? 6;
  const size = opts.batch ?? 500;
  const t = traffic(opts.sensors ?? 10_000, opts.anomaly ?? 0.01);
  const encoder = new TextEncoder();
  const open: InputRecord[][] = Array.from({ length: partitions }, () => []);
  const offsets = new Array<number>(partitions).fill(0);
  let time = opts.start ?? Date.now() - 3_600_000;
  return {
    next() {
      for (;;) {
        const m = t.next(time++);
        const p = partitionOf(m.key, partitions);
        const batch = open[p]!;
        batch.push({
          topic: "events",
          partition: p,
          offset: String(offsets[p]!++),
          key: m.key,
          value: encoder.encode(m.value),
        });
        if (batch.length === size) {
          open[p] = [];
          return batch;
        }
      }
    },
  };
}

/** The first `events` events of `benchStream`, in its batches (the last ones of each partition cut off). */
export function benchBatches(events: number, opts: Parameters<typeof benchStream>[0] = {}): InputRecord[][] {
  const stream = benchStream({ start: Date.now() - events, ...opts });
  const batches: InputRecord[][] = [];
  for (let n = 0; n < events;) {
    const b = stream.next();
    batches.push(b);
    n += b.length;
  }
  return batches;
}

/** An output that keeps nothing: the harness measures the engine, not a producer. */
class NullOutput implements Output {
  sent = 0;
  send(records: OutRecord[]): Promise<void> {
    this.sent += records.length;
    return Promise.resolve();
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** A Pipeline as the engine stage builds it (logger at `warn`, as the bench's service runs). */
export function benchPipeline(ruleSet: RuleSet, checkpoint: boolean): Pipeline {
  return new Pipeline({
    ruleSet: () => ruleSet,
    output: new NullOutput(),
    topics: { alerts: "alerts", dlq: "dlq", aggregates: "aggregates" },
    logger: createLogger({ level: "warn" }),
    checkpoint,
    ...(checkpoint ? { dedupeCapacity: 10_000 } : {}),
  });
}

/** Runs every batch through a new Pipeline; returns CPU microseconds per event and records out. */
export function runBatches(
  ruleSet: RuleSet,
  batches: readonly InputRecord[][],
  checkpoint: boolean,
): { cpuUsPerEvent: number; wallUsPerEvent: number; records: number } {
  const pipeline = benchPipeline(ruleSet, checkpoint);
  let records = 0;
  let events = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (const batch of batches) {
    events += batch.length;
    records += pipeline.evaluate(batch).length;
    if (checkpoint) {
      const p = batch[0]!.partition!;
      const { changes, recentIds } = pipeline.checkpoint(p);
      records += changelogRecords("state", p, changes, recentIds).length;
    }
  }
  const cpu = process.cpuUsage(cpu0);
  return {
    cpuUsPerEvent: (cpu.user + cpu.system) / events,
    wallUsPerEvent: ((performance.now() - t0) * 1000) / events,
    records,
  };
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      events: { type: "string", default: "300000" },
      runs: { type: "string", default: "3" },
      checkpoint: { type: "boolean", default: false },
    },
    strict: true,
  });
  const ruleSet = benchRuleSet();
  const batches = benchBatches(Number(values.events));
  const results = [];
  for (let i = 0; i < Number(values.runs); i++) {
    const r = runBatches(ruleSet, batches, values.checkpoint);
    results.push(r);
    print(
      `run ${i + 1}: ${r.cpuUsPerEvent.toFixed(2)} µs CPU/event, ${
        r.wallUsPerEvent.toFixed(2)
      } µs wall/event, ${r.records} records out`,
    );
  }
  const cpu = results.map((r) => r.cpuUsPerEvent).sort((a, b) => a - b);
  print(`median ${cpu[Math.floor(cpu.length / 2)]!.toFixed(2)} µs CPU/event`);
}
