/**
 * The limits topic's bands, kept up to date record by record: each record parsed once when it arrives,
 * the rule set left as it is (so engines keep their state and caches), its memory bounded by caps on a
 * value's size and on the sensors it gives bands to.
 */
import assert from "node:assert/strict";
import type { SensorEvent } from "../../src/contract/schemas.ts";
import { emptyOutput, RuleEngine } from "../../src/rules/engine.ts";
import { Limits, MAX_LIMITS_VALUE_BYTES, type TopicRecord } from "../../src/rules/limits.ts";
import { TopicLimits } from "../../src/rules/limits.ts";
import { RuleRegistry } from "../../src/rules/registry.ts";
import { ev, T0 } from "../helpers/engine.ts";

const RULES = `
rules:
  - id: fleet-band
    sensor_type: temperature
    limits: fleet
    priority: high
  - id: spike
    sensor_type: temperature
    condition: { ">": [{ abs: [{ zscore: [value, 1m, 1m] }] }, 4] }
    priority: low
limits:
  fleet:
    default: { min: 10, max: 35 }
`;

const encoder = new TextEncoder();
function rec(key: string, value: unknown, offset: number): TopicRecord {
  return {
    key,
    value: value === null ? null : encoder.encode(typeof value === "string" ? value : JSON.stringify(value)),
    partition: 0,
    offset: String(offset),
  };
}

async function registry(files: Record<string, string> = { "rules.yaml": RULES }): Promise<RuleRegistry> {
  const dir = await Deno.makeTempDir();
  for (const [name, text] of Object.entries(files)) await Deno.writeTextFile(`${dir}/${name}`, text);
  const r = new RuleRegistry(dir);
  assert.deepEqual((await r.reload()).problems, []);
  return r;
}

/** Calls of JSON.parse while `run` runs. */
function countParses(run: () => void): number {
  const original = JSON.parse;
  let n = 0;
  JSON.parse = ((text: string, reviver?: (this: unknown, key: string, value: unknown) => unknown) => {
    n++;
    return original(text, reviver);
  }) as typeof JSON.parse;
  try {
    run();
  } finally {
    JSON.parse = original;
  }
  return n;
}

Deno.test("limits topic: each record is parsed once, when it arrives: a later batch parses only its own", async () => {
  const r = await registry();
  const records: TopicRecord[] = [];
  for (let i = 0; i < 1_000; i++) records.push(rec(`temp-${i}`, { fleet: { max: 30 + (i % 5) } }, i));
  records.push(rec("temp-bad", "not json", 1_000));
  const reports: string[] = [];
  const report = (id: string, m: string) => reports.push(`${id}: ${m}`);
  assert.equal(countParses(() => r.applyTopicRecords("limits", records, report)), 1_001);
  const set = r.ruleSet;
  // Before: every batch handed on the whole topic, and each of its 1,001 records was parsed again.
  assert.equal(
    countParses(() => r.applyTopicRecords("limits", [rec("temp-7", { fleet: { max: 45 } }, 1_001)], report)),
    1,
  );
  assert.equal(r.ruleSet, set, "a limits-only change keeps the rule set: no engine swaps rules");
  assert.equal(set.limits.resolve("fleet", "temp-7", null, "temperature")?.max, 45);
  assert.equal(set.limits.resolve("fleet", "temp-8", null, "temperature")?.max, 33);
  assert.deepEqual(reports, [
    `temp-bad: Not JSON: Unexpected token 'o', "not json" is not valid JSON (limits:0@1000)`,
  ]);
});

Deno.test("limits topic: a limits-only change keeps the engine's state and only the changed sensor looks its band up again", async () => {
  const r = await registry();
  const report = () => {};
  r.applyTopicRecords("limits", [rec("temp-a", { fleet: { max: 30 } }, 0)], report);
  const set = r.ruleSet;
  const e = new RuleEngine();
  e.setRules(set);
  const out = emptyOutput();
  const event = (id: string, value: number): SensorEvent => ({ ...ev(id, value), location: null });
  // Baselines of the zscore rule for both sensors, and an open episode for temp-a (32 > 30).
  for (let s = 0; s < 90; s++) {
    e.onEvent(event("temp-a", s === 89 ? 32 : 20 + (s % 3) * 0.1), T0 + s * 1000, out);
    e.onEvent(event("temp-b", 20 + (s % 3) * 0.1), T0 + s * 1000, out);
  }
  assert.deepEqual(out.alerts.map((a) => [a.rule_id, a.sensor_id, a.state, a.threshold]), [
    ["fleet-band", "temp-a", "firing", 30],
    ["spike", "temp-a", "firing", null],
  ]);
  const firing = out.alerts[0]!;
  out.alerts.length = 0;

  r.applyTopicRecords("limits", [rec("temp-a", { fleet: { max: 31 } }, 1)], report);
  // The pipeline gives engines the registry's rule set when it is another object: it is not.
  assert.equal(r.ruleSet, set);
  let lookups = 0;
  const resolve = Limits.prototype.resolve;
  Limits.prototype.resolve = function (...args) {
    lookups++;
    return resolve.apply(this, args);
  };
  try {
    // 32 is still over temp-a's new 31: its episode goes on; temp-b keeps its cached band.
    e.onEvent(event("temp-a", 32), T0 + 90_000, out);
    e.onEvent(event("temp-b", 20.1), T0 + 90_000, out);
    e.onEvent(event("temp-b", 20.2), T0 + 91_000, out);
  } finally {
    Limits.prototype.resolve = resolve;
  }
  assert.equal(lookups, 1, "only temp-a, whose topic entry changed, looked its band up again");
  e.onEvent(event("temp-a", 30.5), T0 + 92_000, out);
  const band = out.alerts.filter((a) => a.rule_id === "fleet-band");
  assert.deepEqual(band.map((a) => [a.state, a.value, a.alert_id]), [["resolved", 30.5, firing.alert_id]]);
  // The zscore baseline of temp-b was kept: a value far from it is a spike at once, no new warm-up.
  e.onEvent(event("temp-b", 28), T0 + 93_000, out);
  assert.deepEqual(
    out.alerts.filter((a) => a.rule_id === "spike" && a.sensor_id === "temp-b").map((a) => a.state),
    ["firing"],
  );
});

Deno.test("limits topic: a value over the size cap is refused unread, reported with its key and offset", async () => {
  const r = await registry();
  const reports: string[] = [];
  const report = (id: string, m: string) => reports.push(`${id}: ${m}`);
  const topic = r.applyTopicRecords("limits", [rec("temp-big", { fleet: { max: 40 } }, 3)], report);
  const huge = JSON.stringify({ fleet: { max: 50 }, pad: "x".repeat(MAX_LIMITS_VALUE_BYTES) });
  const parses = countParses(() => r.applyTopicRecords("limits", [rec("temp-big", huge, 4)], report));
  assert.equal(parses, 0);
  assert.equal(topic.parsed, 1);
  assert.deepEqual(reports, [
    `temp-big: Value of ${huge.length} bytes at limits:0@4, over the limit of 65536 bytes`,
  ]);
  // The newest record of the key is refused: the sensor is back on the files' band.
  assert.equal(r.ruleSet.limits.resolve("fleet", "temp-big", null, "temperature")?.from, "default");
});

Deno.test("limits topic: each bad record is reported once, and what is kept of a key goes with its next record", async () => {
  const r = await registry();
  const reports: string[] = [];
  const report = (id: string, m: string) => reports.push(`${id}: ${m}`);
  const topic = r.applyTopicRecords("limits", [], report);
  for (let i = 0; i < 1_000; i++) {
    r.applyTopicRecords("limits", [rec("temp-2", { nowhere: { max: i } }, i)], report);
  }
  assert.equal(reports.length, 1_000, "one report per record");
  assert.equal(topic.size, 1);
  assert.equal(topic.entry("temp-2")!.reported?.size, 1);
  await r.reload(); // the same tables: nothing reported again
  assert.equal(reports.length, 1_000);
  r.applyTopicRecords("limits", [rec("temp-2", null, 1_000)], report);
  assert.equal(topic.size, 0);
  assert.equal(reports.length, 1_000);
});

Deno.test("limits topic: a table declared after its records applies to them", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/rules.yaml`, RULES);
  const r = new RuleRegistry(dir);
  await r.reload();
  const reports: string[] = [];
  r.applyTopicRecords("limits", [rec("temp-2", { fleet: { max: 1 }, later: { max: 2 } }, 5)], (id, m) => {
    reports.push(`${id}: ${m}`);
  });
  assert.equal(reports.length, 1);
  await Deno.writeTextFile(`${dir}/later.yaml`, "limits:\n  later: {}\n");
  await r.reload();
  assert.equal(r.ruleSet.limits.resolve("later", "temp-2", null, "temperature")?.max, 2);
  assert.equal(reports.length, 1);
});

Deno.test("limits topic: beyond its cap of sensors a further sensor's record is refused and reported, a known one's applied", () => {
  const topic = new TopicLimits("limits", { maxKeys: 2 });
  const reports: string[] = [];
  const apply = (record: TopicRecord) =>
    topic.apply(record, () => true, (m) => reports.push(`${record.key}: ${m}`));
  apply(rec("a", { fleet: { max: 1 } }, 0));
  apply(rec("b", { fleet: { max: 1 } }, 1));
  apply(rec("c", { fleet: { max: 1 } }, 2));
  apply(rec("a", { fleet: { max: 2 } }, 3));
  assert.deepEqual(reports, [
    "c: The limits topic gives bands to 2 sensors, its limit: the record at limits:0@2 of a further " +
    "sensor is left out until others are deleted",
  ]);
  assert.equal(topic.entry("a")!.bands.get("fleet")!.max, 2);
  apply(rec("b", null, 4));
  apply(rec("c", { fleet: { max: 1 } }, 5));
  assert.equal(topic.size, 2);
  assert.equal(reports.length, 1);
  // More tables than a record may hold: refused, and the sensor's previous bands go with it.
  const nine = Object.fromEntries([...Array(9).keys()].map((i) => [`t${i}`, { max: i }]));
  apply(rec("c", nine, 6));
  assert.deepEqual(reports.slice(1), [
    "c: 9 tables at limits:0@6, over the limit of 8 for a limits record",
  ]);
  assert.equal(topic.entry("c"), undefined);
});
