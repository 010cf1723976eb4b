/**
 * What the limits topic costs the engine's thread and heap: 100,000 sensors' records read (in
 * batches of 500, as kafkajs hands them on), then one record more, as a write every 250 ms would be;
 * valid records, invalid ones, and records of 8 tables each (the most one may hold). Heap after a GC,
 * before and after.
 *
 *   deno run --v8-flags=--expose-gc --allow-read --allow-write --allow-env scripts/bench/limits_topic_apply.ts
 *
 * @module
 */
import type { TopicRecord } from "../../src/rules/limits.ts";
import { RuleRegistry } from "../../src/rules/registry.ts";

const SENSORS = 100_000;
const encoder = new TextEncoder();
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
const heapMiB = () => (gc(), Deno.memoryUsage().heapUsed / 2 ** 20);

async function run(name: string, value: (i: number) => string): Promise<void> {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(
    `${dir}/rules.yaml`,
    "rules:\n  - { id: fleet-band, sensor_type: temperature, limits: fleet, priority: high }\n" +
      "limits:\n  fleet:\n    default: { min: 10, max: 35 }\n",
  );
  const registry = new RuleRegistry(dir);
  await registry.reload();
  let reports = 0;
  const report = () => void reports++;
  const heapBefore = heapMiB();
  const started = performance.now();
  let batch: TopicRecord[] = [];
  for (let i = 0; i < SENSORS; i++) {
    batch.push({ key: `temp-${i}`, value: encoder.encode(value(i)), partition: 0, offset: String(i) });
    if (batch.length === 500) {
      registry.applyTopicRecords("limits", batch, report);
      batch = [];
    }
  }
  const read = performance.now() - started;
  const heapAfter = heapMiB();
  const set = registry.ruleSet;
  const one = performance.now();
  const topic = registry.applyTopicRecords("limits", [
    { key: "temp-7", value: encoder.encode(value(7)), partition: 0, offset: String(SENSORS) },
  ], report);
  const change = performance.now() - one;
  // deno-lint-ignore no-console
  console.log(
    `${name}: ${SENSORS} records read in ${read.toFixed(0)} ms (${
      topic.parsed - 1
    } parsed, ${reports} reported), ` +
      `heap +${(heapAfter - heapBefore).toFixed(1)} MiB; one more record ${change.toFixed(2)} ms, ` +
      `same rule set: ${registry.ruleSet === set}`,
  );
  await Deno.remove(dir, { recursive: true });
}

if (import.meta.main) {
  await run("valid", (i) => JSON.stringify({ fleet: { min: i % 10, max: 40 + (i % 10) } }));
  await run("invalid", (i) => JSON.stringify({ fleet: { min: 50, max: i % 10 } }));
  // The most a record may hold: 8 tables (7 of them undeclared here, each reported once).
  await run("8 tables", (i) => {
    const bands: Record<string, unknown> = {};
    for (const t of ["fleet", "t1", "t2", "t3", "t4", "t5", "t6", "t7"]) bands[t] = { max: 40 + (i % 10) };
    return JSON.stringify(bands);
  });
}
