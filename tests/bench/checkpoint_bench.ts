/**
 * What one event costs on the exactly-once path, Kafka aside: a batch of the benchmark's traffic (1%
 * out of range, the shipped rules and 100 generated ones) through the Pipeline, then the partition's
 * checkpoint serialised for the changelog (the bytes its transaction carries besides alerts).
 */
import { type InputRecord, Pipeline } from "../../src/pipeline.ts";
import { createLogger } from "../../src/log.ts";
import { RuleSet } from "../../src/rules/ruleset.ts";
import { parseRuleFile } from "../../src/rules/load.ts";
import { EventGenerator, sensorFleet } from "../../src/simulator/sensors.ts";
import { changelogRecords } from "../../src/state/format.ts";
import { generateRules, rulesFile } from "../../scripts/bench/rules.ts";
import { MemoryOutput } from "../helpers/events.ts";

const BATCH = 1000;
const SENSORS = 10_000;

function ruleSet(): RuleSet {
  const files = ["default.yaml", "aggregates.yaml", "deadman.yaml"].map((f) =>
    parseRuleFile(f, Deno.readTextFileSync(new URL(`../../rules/${f}`, import.meta.url)))
  );
  files.push(parseRuleFile("bench.yaml", rulesFile(generateRules(100, { sensors: SENSORS }))));
  return new RuleSet(files.flatMap((f) => f.rules));
}

const rules = ruleSet();
const pipeline = new Pipeline({
  ruleSet: () => rules,
  output: new MemoryOutput(),
  topics: { alerts: "alerts", dlq: "dlq" },
  logger: createLogger({ level: "error" }),
  checkpoint: true,
});
const events = new EventGenerator({ seed: 1, anomalyProbability: 0.01, sensors: sensorFleet(SENSORS - 6) });
// Event time advances 1 ms an event, as the benchmark's preload: a sensor every 10 s.
let now = Date.now() - 3_600_000;
let offset = 0;
const batch = (): InputRecord[] =>
  Array.from({ length: BATCH }, () => {
    const e = events.next(now++);
    const value = JSON.stringify(e);
    return {
      topic: "events",
      partition: 0,
      offset: String(offset++),
      key: `${e.sensor_type}:${e.sensor_id}`,
      value,
    };
  });
let bytes = 0;
const step = (records: InputRecord[]): void => {
  pipeline.evaluate(records);
  const { changes, recentIds } = pipeline.checkpoint(0, now);
  for (const r of changelogRecords("state", 0, changes, recentIds)) bytes += r.value?.length ?? 0;
};
// Every sensor seen a few times: windows, deadman timers and episodes as a running service has them.
for (let i = 0; i < 60; i++) step(batch());

Deno.bench(`evaluate and checkpoint, per batch of ${BATCH}`, { group: "exactly-once" }, (b) => {
  const records = batch();
  b.start();
  step(records);
  b.end();
});

globalThis.addEventListener("unload", () => {
  // deno-lint-ignore no-console
  console.error(`changelog bytes per event: ${(bytes / offset).toFixed(1)}`);
});
