import assert from "node:assert/strict";
import type { SensorEvent } from "../../src/contract/schemas.ts";
import { emptyOutput, RuleEngine } from "../../src/rules/engine.ts";
import { parseRuleFile } from "../../src/rules/load.ts";
import { RuleRegistry } from "../../src/rules/registry.ts";
import type { TopicRecord } from "../../src/rules/limits.ts";
import { ev, T0 } from "../helpers/engine.ts";

const RULES = `
rules:
  - id: comfort-band
    sensor_type: [temperature, humidity]
    limits: comfort
    hysteresis: 1
    priority: high
limits:
  comfort:
    default: { min: 10, max: 35 }
    sensor_type:
      humidity: { min: 30, max: 70 }
    location:
      Cold room: { min: -25, max: -15 }
    sensor_id:
      temp-hot: { max: 50 }
`;

async function registryWith(files: Record<string, string>): Promise<RuleRegistry> {
  const dir = await Deno.makeTempDir();
  for (const [name, text] of Object.entries(files)) await Deno.writeTextFile(`${dir}/${name}`, text);
  return new RuleRegistry(dir);
}

function at(sensor: string, value: number, location: string | null, type: SensorEvent["sensor_type"]) {
  return { ...ev(sensor, value, type), location };
}

Deno.test("limits: the most specific entry applies, sensor id over location over sensor type over default", async () => {
  const registry = await registryWith({ "default.yaml": RULES });
  const { ruleSet, problems } = await registry.reload();
  assert.deepEqual(problems, []);
  const e = new RuleEngine();
  e.setRules(ruleSet);
  const out = emptyOutput();
  e.onEvent(at("temp-hot", 45, "Cold room", "temperature"), T0, out); // sensor_id: max 50
  e.onEvent(at("freezer", -10, "Cold room", "temperature"), T0, out); // location: max -15
  e.onEvent(at("hum-1", 75, "Hall", "humidity"), T0, out); // sensor_type: max 70
  e.onEvent(at("temp-1", 36, "Hall", "temperature"), T0, out); // default: max 35
  e.onEvent(at("temp-2", 34, "Hall", "temperature"), T0, out);
  assert.deepEqual(out.errors, []);
  assert.deepEqual(
    out.alerts.map((a) => [a.sensor_id, a.threshold, a.limits?.from, a.limits?.key ?? null]),
    [["freezer", -15, "location", "Cold room"], ["hum-1", 70, "sensor_type", "humidity"], [
      "temp-1",
      35,
      "default",
      null,
    ]],
  );
  assert.match(out.alerts[0]!.message, /value -10 °C exceeds the maximum threshold -15$/);
  assert.equal(out.alerts[0]!.limits?.table, "comfort");
  assert.match(out.alerts[0]!.limits!.source, /default\.yaml:14$/);
});

Deno.test("limits: a sensor no entry covers, in a table without a default, is not judged", async () => {
  const registry = await registryWith({
    "a.yaml": `
rules:
  - { id: per-sensor, limits: only-some, priority: low }
limits:
  only-some:
    sensor_id: { t1: { max: 1 } }
`,
  });
  const { ruleSet } = await registry.reload();
  const e = new RuleEngine();
  e.setRules(ruleSet);
  const out = emptyOutput();
  e.onEvent(ev("t2", 100), T0, out);
  e.onEvent(ev("t1", 2), T0, out);
  assert.deepEqual(out.alerts.map((a) => a.sensor_id), ["t1"]);
});

Deno.test("limits: a changed table applies to the sensor's next event and keeps its open episode", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/default.yaml`, RULES);
  const registry = new RuleRegistry(dir);
  const e = new RuleEngine();
  e.setRules((await registry.reload()).ruleSet);
  const out = emptyOutput();
  e.onEvent(at("temp-1", 38, "Hall", "temperature"), T0, out);
  assert.equal(out.alerts.length, 1);
  const firing = out.alerts[0]!;

  // An edit made while the episode is open: 38 °C is still too hot under max 37, 36 is back within.
  await Deno.writeTextFile(
    `${dir}/default.yaml`,
    RULES.replace("default: { min: 10, max: 35 }", "default: { min: 10, max: 37 }"),
  );
  const reload = await registry.reload();
  assert.deepEqual(reload.problems, []);
  e.setRules(reload.ruleSet);
  out.alerts.length = 0;
  e.onEvent(at("temp-1", 38, "Hall", "temperature"), T0 + 1000, out);
  assert.equal(out.alerts.length, 0, "no resolved notice, no new alert: the episode goes on");
  e.onEvent(at("temp-1", 35.5, "Hall", "temperature"), T0 + 2000, out);
  assert.deepEqual(out.alerts.map((a) => [a.state, a.alert_id]), [["resolved", firing.alert_id]]);
});

Deno.test("limits: hysteresis applies to the sensor's own band", async () => {
  const registry = await registryWith({ "default.yaml": RULES });
  const e = new RuleEngine();
  e.setRules((await registry.reload()).ruleSet);
  const out = emptyOutput();
  e.onEvent(at("hum-1", 71, "Hall", "humidity"), T0, out);
  e.onEvent(at("hum-1", 69.5, "Hall", "humidity"), T0 + 1000, out); // within 70, not within 70 - 1
  e.onEvent(at("hum-1", 68.5, "Hall", "humidity"), T0 + 2000, out);
  assert.deepEqual(out.alerts.map((a) => [a.state, a.value]), [["firing", 71], ["resolved", 68.5]]);
  assert.match(out.alerts[1]!.message, /is back within 30\.\.70$/);
});

Deno.test("limits: problems are located at file:line, an unknown table and a table named twice across files", async () => {
  const registry = await registryWith({
    "a.yaml": `
rules:
  - id: uses-missing
    limits: nowhere
    priority: low
limits:
  twice:
    default: { max: 1 }
`,
    "b.yaml": `
limits:
  twice:
    default: { max: 2 }
  broken:
    sensor_id:
      t1: { min: 5, max: 1 }
`,
  });
  const { problems } = await registry.reload();
  const lines = problems.map((p) =>
    `${p.file.split("/").at(-1)}:${p.line} ${p.rule_id ?? "-"}: ${p.message}`
  );
  assert.deepEqual(lines, [
    'a.yaml:3 uses-missing: No limits table named "nowhere" (tables: twice)',
    'b.yaml:7 -: Field "limits.broken.sensor_id.t1": "min" must not exceed "max"',
  ]);
  const fixed = await registryWith({
    "a.yaml": "limits:\n  twice:\n    default: { max: 1 }\n",
    "b.yaml": "limits:\n  twice:\n    default: { max: 2 }\n",
  });
  assert.deepEqual(
    (await fixed.reload()).problems.map((p) => `${p.file.split("/").at(-1)}:${p.line} ${p.message}`),
    ['b.yaml:2 Limits table "twice" is already defined at ' + `${fixed.dir}/a.yaml:2: this one is ignored`],
  );
});

Deno.test("parseRuleFile() refuses limits together with a threshold, or on a window rule", () => {
  const problems = (extra: string) =>
    parseRuleFile("t.yaml", `rules:\n  - id: r\n    priority: low\n    limits: x\n${extra}`).problems.map((
      p,
    ) => p.message);
  assert.deepEqual(problems("    threshold: { max: 1 }\n"), [
    'Rule: needs exactly one of "condition", "threshold", "limits", "sequence" or "absent_for"',
  ]);
  assert.deepEqual(problems("    window: { type: tumbling, size: 1m }\n"), [
    'Field "limits": per-sensor limits apply to each event: not to a window rule',
  ]);
});

const encoder = new TextEncoder();
/** A record of the limits topic on partition 0. */
function rec(key: string, value: unknown, offset: number | string): TopicRecord {
  return {
    key,
    value: value === null ? null : encoder.encode(typeof value === "string" ? value : JSON.stringify(value)),
    partition: 0,
    offset: String(offset),
  };
}

Deno.test("limits topic: a topic's band overrides the files' for its sensor; bad records are reported and left out", async () => {
  const registry = await registryWith({ "default.yaml": RULES });
  await registry.reload();
  const reports: string[] = [];
  const report = (id: string, message: string) => reports.push(`${id}: ${message}`);
  registry.applyTopicRecords("limits", [
    rec("temp-hot", { comfort: { max: 60 } }, 7),
    rec("temp-1", { comfort: { min: 5, max: 1 } }, 8),
    rec("temp-2", { nowhere: { max: 1 } }, 9),
  ], report);
  const set = registry.ruleSet;
  const band = set.limits.resolve("comfort", "temp-hot", "Cold room", "temperature")!;
  assert.deepEqual([band.max, band.from, band.key, band.source], [60, "topic", "temp-hot", "limits:0@7"]);
  assert.equal(set.limits.resolve("comfort", "temp-1", "Hall", "temperature")?.from, "default");
  assert.deepEqual(reports, [
    'temp-1: At "comfort": "min" must not exceed "max" (limits:0@8)',
    'temp-2: No limits table named "nowhere" in the rule files: declare it there (it may be empty) (limits:0@9)',
  ]);
  // A rule reload does not report the same records again.
  await registry.reload();
  assert.equal(reports.length, 2);
});

Deno.test("limits: a sensor that moves, or two limits rules on one sensor, each get their own band", async () => {
  const registry = await registryWith({
    "default.yaml": RULES + `
  strict:
    default: { max: 20 }
`,
    "z.yaml": "rules:\n  - { id: strict-band, sensor_type: temperature, limits: strict, priority: low }\n",
  });
  const { ruleSet, problems } = await registry.reload();
  assert.deepEqual(problems, []);
  const e = new RuleEngine();
  e.setRules(ruleSet);
  const out = emptyOutput();
  e.onEvent(at("temp-1", 25, "Hall", "temperature"), T0, out); // strict (max 20) only
  e.onEvent(at("temp-1", 25, "Cold room", "temperature"), T0 + 1000, out); // now also over -15
  // comfort-band (first by file name) keeps its band on the sensor's record: the move must renew it.
  assert.deepEqual(out.alerts.map((a) => [a.rule_id, a.threshold, a.timestamp]), [
    ["strict-band", 20, new Date(T0).toISOString()],
    ["comfort-band", -15, new Date(T0 + 1000).toISOString()],
  ]);
});
