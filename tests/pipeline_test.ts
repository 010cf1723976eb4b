import assert from "node:assert/strict";
import { SensorAlert } from "../src/contract/schemas.ts";
import { Pipeline } from "../src/pipeline.ts";
import { RuleRegistry } from "../src/rules/registry.ts";
import { createLogger } from "../src/log.ts";
import { event, MemoryOutput, record } from "./helpers/events.ts";

const quiet = createLogger({ level: "error" });
const topics = { alerts: "alerts", dlq: "dead-letter-queue" };

async function setup() {
  const registry = new RuleRegistry("rules");
  await registry.reload();
  const output = new MemoryOutput();
  return { output, p: new Pipeline({ ruleSet: () => registry.ruleSet, output, topics, logger: quiet }) };
}

Deno.test("Pipeline raises one alert per episode and one resolved notice", async () => {
  const { p, output } = await setup();
  const batch = [
    event({ value: 20 }),
    ...Array.from({ length: 50 }, () => event({ value: 40 })),
    event({ value: 22 }),
    event({ value: 23 }),
  ];
  await p.process(batch.map((e, i) => record(e, i)));
  const alerts = output.on("alerts").map((a) => SensorAlert.parse(a));
  assert.deepEqual(alerts.map((a) => a.state), ["firing", "resolved"]);
  assert.equal(alerts[0]!.alert_id, alerts[1]!.alert_id, "the resolved notice reuses the episode's alert_id");
  assert.equal(alerts[0]!.rule_id, "temperature-out-of-range");
  assert.equal(alerts[0]!.acknowledged, false);
  assert.equal(alerts[0]!.timestamp, new Date(alerts[0]!.timestamp).toISOString(), "UTC ISO 8601");
});

Deno.test("Pipeline neither counts nor alerts twice on a redelivered event", async () => {
  const { p, output } = await setup();
  const hot = event({ value: 50 });
  const cool = event({ value: 20 });
  await p.process([record(hot, 1), record(cool, 2)]);
  await p.process([record(hot, 1), record(cool, 2)]);
  assert.equal(output.on("alerts").length, 2, "firing + resolved, once");
  assert.equal(p.stats.get("temp-001")!.count, 2);
  assert.equal(p.counters.duplicates, 2);
});

Deno.test("Pipeline dead-letters bad input with the reason and keeps processing", async () => {
  const { p, output } = await setup();
  await p.process([
    record("{oops", 1),
    record(event({ value: 99 }), 2),
    { topic: "sensor-events", partition: 3, offset: "4", key: "k", value: null },
    record(JSON.stringify({ ...event(), value: "hot" }), 5),
  ]);
  const dlq = output.on("dead-letter-queue");
  assert.equal(dlq.length, 3);
  assert.deepEqual(dlq.map((d) => d.stage), ["decode", "decode", "validate"]);
  assert.equal(dlq[0]!.original_value, "{oops");
  assert.equal(dlq[0]!.original_offset, "1");
  assert.equal(dlq[1]!.original_partition, 3);
  assert.match(String(dlq[2]!.error), /"value"/);
  for (const d of dlq) {
    for (
      const f of [
        "original_topic",
        "original_key",
        "original_value",
        "error",
        "retry_count",
        "stage",
        "failed_at",
      ]
    ) {
      assert.ok(f in d, `DLQ record has ${f}`);
    }
  }
  assert.equal(output.on("alerts").length, 1, "the good event between bad ones still alerts");
});

Deno.test("Pipeline dead-letters a 2 MB value with its original value cut to fit the topic", async () => {
  const { p, output } = await setup();
  await p.process([record(JSON.stringify({ ...event(), unit: "x".repeat(2 * 1024 * 1024) }), 9)]);
  const [d] = output.on("dead-letter-queue");
  assert.match(String(d!.error), /exceeds the limit/);
  assert.equal(d!.original_value_truncated, true);
  assert.ok(String(d!.original_value).length <= 64 * 1024);
});

Deno.test("Pipeline keeps one event-time clock per input partition, so a lagging partition's events are not late", async () => {
  const { parseRuleFile } = await import("../src/rules/load.ts");
  const { RuleSet } = await import("../src/rules/ruleset.ts");
  const r = parseRuleFile(
    "t.yaml",
    `rules:
  - id: w
    sensor_type: temperature
    window: { type: tumbling, size: 1m }
    condition: { ">": [{ var: count }, 1000] }
    publish: true
    priority: low
`,
  );
  const ruleSet = new RuleSet(r.rules);
  const output = new MemoryOutput();
  const p = new Pipeline({
    ruleSet: () => ruleSet,
    output,
    topics: { ...topics, aggregates: "aggregates" },
    logger: quiet,
  });
  const base = Date.UTC(2026, 0, 1);
  const at = (s: number) => new Date(base + s * 1000).toISOString();
  // Partition 0 is current; partition 1 is catching up ten minutes behind it.
  await p.process([{ ...record(event({ sensor_id: "now", timestamp: at(600) }), 1), partition: 0 }]);
  const behind = Array.from({ length: 12 }, (_, i) => ({
    ...record(event({ sensor_id: "behind", timestamp: at(i * 10) }), 10 + i),
    partition: 1,
  }));
  await p.process(behind);
  assert.equal(p.counters.late_events, 0);
  assert.deepEqual(output.on("aggregates").map((a) => `${a.sensor_id}:${a.count}`), ["behind:6"]);
});
