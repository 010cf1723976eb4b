import assert from "node:assert/strict";
import { SensorAlert, type SensorEventInput } from "../src/contract/schemas.ts";
import { MAX_OUTPUT_RECORD_BYTES, Pipeline, type PipelineOptions } from "../src/pipeline.ts";
import { RuleRegistry } from "../src/rules/registry.ts";
import { createLogger } from "../src/log.ts";
import { ruleSet } from "./helpers/engine.ts";
import { event, MemoryOutput, record } from "./helpers/events.ts";

const quiet = createLogger({ level: "error" });
const topics = { alerts: "alerts", dlq: "dead-letter-queue" };

/** A pipeline running the project's rules into a MemoryOutput; `observer` watches (or breaks) each event. */
async function setup(observer?: PipelineOptions["observer"], maxSensors?: number) {
  const registry = new RuleRegistry("rules");
  await registry.reload();
  const output = new MemoryOutput();
  return {
    output,
    p: new Pipeline({
      ruleSet: () => registry.ruleSet,
      output,
      topics,
      logger: quiet,
      ...(observer === undefined ? {} : { observer }),
      ...(maxSensors === undefined ? {} : { maxSensors }),
    }),
  };
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

/** An event's JSON with `metadata` nested `levels` deep (2 bytes a level, so 100,000 levels fit the size limit). */
function deeplyNested(e: SensorEventInput, levels: number): string {
  return JSON.stringify({ ...e, metadata: "X" }).replace(
    '"X"',
    `{"a":${"[".repeat(levels)}1${"]".repeat(levels)}}`,
  );
}

function assertCountersAddUp(p: Pipeline): void {
  const c = p.counters;
  assert.equal(
    c.events,
    c.accepted + c.duplicates + c.dead_lettered,
    `events ${c.events} = accepted ${c.accepted} + duplicates ${c.duplicates} + dead-lettered ${c.dead_lettered}`,
  );
}

Deno.test("Pipeline dead-letters each record of a hostile batch, alerts on the good ones, and its counters add up", async () => {
  const { p, output } = await setup();
  const first = event({ sensor_id: "temp-a", value: 50 });
  const deep = event({ sensor_id: "temp-deep", value: 50 });
  const last = event({ sensor_id: "temp-b", value: 50 });
  const hostile = [
    record(first, 1),
    { ...record(deep, 2), value: deeplyNested(deep, 100_000) },
    record(event({ event_id: "e".repeat(200_000) }), 3),
    record(event({ sensor_id: "s".repeat(50_000) }), 4),
    record(event({ metadata: { ["k".repeat(10_000)]: 1 } }), 5),
    record(event({ metadata: { __proto__: { polluted: true }, constructor: "x", note: "\ud800 lone" } }), 6),
    record("{not json", 7),
    { ...record(first, 1), offset: "8" },
    { topic: "sensor-events", partition: 0, offset: "9", key: null, value: null },
    record(event({ sensor_id: "temp-big", value: 1e308 }), 10),
    record(last, 11),
  ];
  await p.process(hostile);
  const alerts = output.on("alerts").map((a) => SensorAlert.parse(a));
  assert.deepEqual(alerts.map((a) => `${a.sensor_id} ${a.state}`), [
    "temp-a firing",
    "temp-big firing",
    "temp-b firing",
  ]);
  const dlq = output.on("dead-letter-queue");
  assert.deepEqual(dlq.map((d) => `${d.original_offset} ${d.stage}`), [
    "2 validate",
    "3 validate",
    "4 validate",
    "5 validate",
    "7 decode",
    "9 decode",
  ]);
  assert.match(String(dlq[0]!.error), /^Field "metadata\.a\.0\.0.*": nested deeper than \d+ levels/);
  assert.match(String(dlq[1]!.error), /^Field "event_id": 200000 characters, at most \d+ allowed/);
  assert.match(String(dlq[2]!.error), /^Field "sensor_id"/);
  assert.equal(p.counters.invalid.get("validate\u0000metadata_too_deep"), 1);
  assert.equal(p.counters.invalid.get("validate\u0000field_too_long"), 3);
  assert.equal(p.counters.dead_lettered, 6);
  assert.equal(p.counters.duplicates, 1);
  assertCountersAddUp(p);
  assert.equal(
    p.stats.get("s".repeat(50_000)),
    undefined,
    "a refused sensor id is not kept in the stats table",
  );
});

Deno.test("Pipeline dead-letters a record whose alert cannot be serialised and publishes the next event's alert", async () => {
  // The last line of defence: decode's bounds make such an event impossible, so a test makes one.
  const { output, p } = await setup({
    onEvent: (e) => {
      if (e.event.event_id === "cyclic") e.event.metadata.self = e.event.metadata;
    },
  });
  await p.process([
    record(event({ event_id: "cyclic", sensor_id: "temp-c", value: 50 }), 1),
    record(event({ event_id: "next", sensor_id: "temp-d", value: 50 }), 2),
  ]);
  const alerts = output.on("alerts").map((a) => SensorAlert.parse(a));
  assert.deepEqual(alerts.map((a) => a.event_id), ["next"]);
  const dlq = output.on("dead-letter-queue");
  assert.equal(dlq.length, 1);
  assert.equal(dlq[0]!.stage, "alert");
  assert.equal(dlq[0]!.original_offset, "1");
  assert.equal(dlq[0]!.rule_id, "temperature-out-of-range");
  assert.match(String(dlq[0]!.error), /^Cannot serialise the alert of rule "temperature-out-of-range": /);
  assert.equal(p.counters.invalid.get("alert\u0000unserializable"), 1);
  assert.equal(p.counters.alerts, 1, "only published alerts are counted");
  assertCountersAddUp(p);
});

Deno.test("Pipeline dead-letters a record whose processing throws anywhere, and moves on", async () => {
  const { output, p } = await setup({
    onEvent: (e) => {
      if (e.event.event_id === "boom") throw new Error("observer exploded");
    },
  });
  await p.process([
    record(event({ event_id: "boom", sensor_id: "temp-e", value: 50 }), 1),
    record(event({ event_id: "after", sensor_id: "temp-f", value: 50 }), 2),
  ]);
  assert.deepEqual(output.on("alerts").map((a) => a.event_id), ["after"]);
  const dlq = output.on("dead-letter-queue");
  assert.equal(dlq.length, 1);
  assert.match(String(dlq[0]!.error), /^Processing failed: observer exploded$/);
  assert.equal(p.counters.invalid.get(`${dlq[0]!.stage}\u0000internal_error`), 1);
  assertCountersAddUp(p);
});

Deno.test("Pipeline dead-letters events of new sensors past the engine's limit (the shipped deadman rule watches each)", async () => {
  const { output, p } = await setup(undefined, 100);
  const ids = Array.from({ length: 150 }, (_, i) => `temp-${i}`);
  await p.process(ids.map((id, i) => record(event({ sensor_id: id }), i)));
  const dlq = output.on("dead-letter-queue");
  assert.deepEqual(dlq.map((d) => JSON.parse(String(d.original_value)).sensor_id), ids.slice(100));
  assert.deepEqual(new Set(dlq.map((d) => d.stage)), new Set(["rule"]));
  assert.match(String(dlq[0]!.error), /limit \(MAX_SENSORS_PER_PARTITION=100\)/);
  assert.equal(p.counters.invalid.get("rule\u0000sensor_limit"), 50);
  // A sensor the engine keeps is still judged.
  await p.process([record(event({ sensor_id: "temp-0", value: 99 }), 150)]);
  assert.deepEqual(output.on("alerts").map((a) => [a.sensor_id, a.state]), [["temp-0", "firing"]]);
  assertCountersAddUp(p);
});

Deno.test("Pipeline dead-letters a line its source cut short as too large, with its real size", async () => {
  const { p, output } = await setup();
  const kept = new TextEncoder().encode(`{"event_id":"${"x".repeat(300 * 1024)}`).slice(0, 256 * 1024);
  await p.process([
    { topic: "file:big.ndjson", partition: null, offset: "1", key: null, value: kept, size: 100_000_000 },
    record(event({ value: 50 }), 2),
  ]);
  const [d] = output.on("dead-letter-queue");
  assert.equal(d!.stage, "decode");
  assert.match(String(d!.error), /^Message value of 100000000 bytes exceeds the limit of 262144 bytes$/);
  assert.equal(d!.original_size, 100_000_000);
  assert.equal(d!.original_value_truncated, true);
  assert.equal(p.counters.invalid.get("decode\u0000too_large"), 1);
  assert.equal(output.on("alerts").length, 1);
  assertCountersAddUp(p);
});

Deno.test("Pipeline dead-letters a record with a 600 KB key under a cut key, so the DLQ record stays publishable", async () => {
  const { p, output } = await setup();
  const key = "temperature:" + "k".repeat(600_000);
  await p.process([{ ...record(event(), 1), key }, record(event({ value: 50 }), 2)]);
  const [dlq] = output.records.filter((r) => r.topic === "dead-letter-queue");
  assert.ok(dlq!.key!.length <= 1024, "the DLQ record's own key is cut");
  const d = JSON.parse(dlq!.value!);
  assert.equal(d.original_key.length, 1024);
  assert.equal(d.original_key_truncated, true);
  assert.match(d.error, /^Message key "temperature:k+…" does not match/);
  assert.ok(new TextEncoder().encode(dlq!.value!).byteLength < MAX_OUTPUT_RECORD_BYTES);
  assert.equal(output.on("alerts").length, 1);
  assertCountersAddUp(p);
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

Deno.test("Pipeline dead-letters events of new window groups past the limit under group_limit, and judges them by the other rules", async () => {
  const rules = ruleSet(`
rules:
  - id: by-location
    sensor_type: temperature
    window: { type: tumbling, size: 1h }
    group_by: location
    threshold: { max: 30 }
    priority: high
  - id: hot
    sensor_type: temperature
    threshold: { max: 30 }
    priority: high
`);
  const output = new MemoryOutput();
  const p = new Pipeline({ ruleSet: () => rules, output, topics, logger: quiet, maxSensors: 100 });
  const at = (i: number, value = 20) =>
    record(
      event({
        sensor_id: "temp-1",
        location: `L-${i}`,
        value,
        timestamp: new Date(Date.UTC(2026, 10, 25, 21, 0, 0, i)).toISOString(),
      }),
      i,
    );
  await p.process(Array.from({ length: 150 }, (_, i) => at(i)));
  await p.process([at(150, 99)]);
  const dlq = output.on("dead-letter-queue");
  assert.equal(dlq.length, 51);
  assert.deepEqual(new Set(dlq.map((d) => `${d.stage} ${d.rule_id}`)), new Set(["rule by-location"]));
  assert.match(String(dlq[0]!.error), /limit \(MAX_SENSORS_PER_PARTITION=100\).*"L-100"/);
  assert.equal(p.counters.invalid.get("rule\u0000group_limit"), 51);
  assert.deepEqual(output.on("alerts").map((a) => [a.rule_id, a.value]), [["hot", 99]]);
  assertCountersAddUp(p);
});
