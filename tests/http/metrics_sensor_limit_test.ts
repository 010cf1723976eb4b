import assert from "node:assert/strict";
import { createMetrics } from "../../src/http/metrics.ts";
import { LiveFeed } from "../../src/http/live.ts";
import { createLogger } from "../../src/log.ts";
import { Pipeline } from "../../src/pipeline.ts";
import { parseRuleFile } from "../../src/rules/load.ts";
import { RuleSet } from "../../src/rules/ruleset.ts";
import type { Service } from "../../src/service.ts";
import { event, MemoryOutput, record } from "../helpers/events.ts";
import { Scrape } from "../helpers/metrics.ts";

const HOT = `rules:
  - id: hot
    sensor_type: temperature
    threshold: { max: 30 }
    priority: high
`;

/** A Pipeline of the rules in `yaml` that holds at most 100 sensors per partition. */
function pipelineOf(yaml: string): Pipeline {
  const rules = parseRuleFile("limits.yaml", yaml);
  assert.deepEqual(rules.problems, []);
  const ruleSet = new RuleSet(rules.rules);
  return new Pipeline({
    ruleSet: () => ruleSet,
    output: new MemoryOutput(),
    topics: { alerts: "alerts", dlq: "dlq" },
    logger: createLogger({ level: "error" }),
    maxSensors: 100,
  });
}

Deno.test("/metrics counts the sensors forgotten and the events refused at MAX_SENSORS_PER_PARTITION", async () => {
  // `hot` keeps no state for a sensor below 30; `silent` gives every motion sensor a deadman timer.
  const p = pipelineOf(`${HOT}  - id: silent
    sensor_type: motion
    absent_for: 5m
    priority: normal
`);
  const temps = Array.from({ length: 150 }, (_, i) => event({ sensor_id: `temp-${i}`, value: 20 }));
  const motions = Array.from(
    { length: 150 },
    (_, i) => event({ sensor_id: `door-${i}`, sensor_type: "motion", value: 1 }),
  );
  await p.process([...temps, ...motions].map((e, i) => record(e, i)));
  const service = { pipeline: p, dispatcher: null } as unknown as Service;
  const registry = createMetrics({
    service: () => service,
    live: new LiveFeed(),
    lag: () => null,
    logger: createLogger({ level: "error" }),
  });
  const m = new Scrape(
    await registry.getSingleMetricAsString("sensor_engine_sensors_forgotten_total") + "\n" +
      await registry.getSingleMetricAsString("sensor_events_invalid_total") + "\n",
  );
  // Each look forgets stateless sensors down to nine tenths of the limit: 50 temperature sensors while
  // they pass, the other 100 as doors (each holding a timer) take their places; the last 50 doors are refused.
  assert.equal(m.value("sensor_engine_sensors_forgotten_total"), 150);
  assert.equal(m.value("sensor_events_invalid_total", { stage: "rule", reason: "sensor_limit" }), 50);
});

Deno.test("counters summed over partitions never go down when a partition is revoked or restored", async () => {
  // Prometheus reads a counter that went down as a restart of the process: `rate()` then counts its
  // whole value again. Before, a revoked partition took its engine's counts with it.
  const p = pipelineOf(HOT);
  const onPartition = (partition: number, from: number) =>
    Array.from({ length: 150 }, (_, i) => ({
      ...record(event({ sensor_id: `p${partition}-${from + i}`, value: 20 }), from + i),
      partition,
    }));
  await p.process(onPartition(0, 0));
  await p.process(onPartition(1, 0));
  const counted = p.counters.sensors_forgotten;
  assert.ok(counted > 0);
  // One event of a sensor partition 1 keeps: nothing more is forgotten, and nothing less is counted.
  const again = { ...record(event({ sensor_id: "p1-149", value: 20 }), 150), partition: 1 };
  p.dropPartition(0);
  await p.process([again]);
  assert.equal(p.counters.sensors_forgotten, counted, "after partition 0 was revoked");
  p.restorePartition(1, [], []);
  await p.process([{ ...again, offset: "151" }]);
  assert.equal(p.counters.sensors_forgotten, counted, "after partition 1 was restored");
});
