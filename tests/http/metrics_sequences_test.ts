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

Deno.test("/metrics counts the partial sequence matches dropped by the cap and by the timeout", async () => {
  const rules = parseRuleFile(
    "seq.yaml",
    `rules:
  - id: door-then-warm
    group_by: location
    sequence:
      first: { sensor_type: motion, condition: true }
      then: { sensor_type: temperature, condition: { ">": [{ var: value }, 25] } }
      within: 5m
      max_open: 2
    priority: high
`,
  );
  assert.deepEqual(rules.problems, []);
  const ruleSet = new RuleSet(rules.rules);
  const logger = createLogger({ level: "error" });
  const p = new Pipeline({
    ruleSet: () => ruleSet,
    output: new MemoryOutput(),
    topics: { alerts: "alerts", dlq: "dlq" },
    logger,
  });
  const at = (minute: number, second = 0) => new Date(Date.UTC(2026, 0, 1, 0, minute, second)).toISOString();
  const door = (s: number) =>
    event({ sensor_id: "door-1", sensor_type: "motion", value: 1, timestamp: at(0, s) });
  // Three As in a group that holds two: one dropped by the cap; the two left expire at 5m.
  await p.process([
    record(door(1), 0),
    record(door(2), 1),
    record(door(3), 2),
    record(event({ sensor_id: "temp-9", value: 20, timestamp: at(10) }), 3),
  ]);
  const service = { pipeline: p, dispatcher: null } as unknown as Service;
  const registry = createMetrics({ service: () => service, live: new LiveFeed(), lag: () => null, logger });
  const m = new Scrape(
    await registry.getSingleMetricAsString("sensor_sequence_partials_dropped_total") + "\n",
  );
  assert.equal(m.value("sensor_sequence_partials_dropped_total", { reason: "cap" }), 1);
  assert.equal(m.value("sensor_sequence_partials_dropped_total", { reason: "timeout" }), 2);
});
