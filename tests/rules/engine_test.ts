import assert from "node:assert/strict";
import { emptyOutput, RuleEngine } from "../../src/rules/engine.ts";
import { parseRuleFile } from "../../src/rules/load.ts";
import { RuleSet } from "../../src/rules/ruleset.ts";
import { engine, ev, T0 } from "../helpers/engine.ts";

/** Feeds (seconds after T0, sensor, value) and returns "state@seconds" per alert. */
function run(e: RuleEngine, feed: [number, string, number][], ticks: number[] = []) {
  const out = emptyOutput();
  const seen: string[] = [];
  const steps = [
    ...feed.map(([t, id, v]) => ({ t, f: () => e.onEvent(ev(id, v), T0 + t * 1000, out) })),
    ...ticks.map((t) => ({ t, f: () => e.tick(out, 0, T0 + t * 1000) })),
  ].sort((a, b) => a.t - b.t);
  for (const s of steps) {
    s.f();
    for (const a of out.alerts.splice(0)) seen.push(`${a.state}@${(Date.parse(a.timestamp) - T0) / 1000}`);
  }
  return { seen, out };
}

const HOT = `rules:
  - id: hot
    sensor_type: temperature
    threshold: { max: 35 }
    priority: high
`;

Deno.test("a sensor stuck at 40 °C for ten minutes at 10 events/s is one firing and one resolved alert", () => {
  const e = engine(HOT);
  const out = emptyOutput();
  let firing = 0;
  let resolved = 0;
  for (let i = 0; i < 6000; i++) {
    e.onEvent(ev("temp-001", 40), T0 + i * 100, out);
  }
  e.onEvent(ev("temp-001", 22), T0 + 600_000, out);
  for (const a of out.alerts) a.state === "firing" ? firing++ : resolved++;
  assert.equal(firing, 1);
  assert.equal(resolved, 1);
  assert.equal(out.alerts[0]!.alert_id, out.alerts[1]!.alert_id);
});

Deno.test("`for` holds an alert back until the condition held that long", () => {
  const e = engine(HOT + "    for: 30s\n");
  const { seen } = run(e, [[0, "t", 40], [10, "t", 40], [20, "t", 20], [25, "t", 40], [50, "t", 40], [
    55,
    "t",
    41,
  ]]);
  // The dip at 20 s resets the pending time; 25 + 30 = 55.
  assert.deepEqual(seen, ["firing@55"]);
});

Deno.test("hysteresis keeps an alert firing until the value is back inside the narrowed band", () => {
  const e = engine(HOT + "    hysteresis: 2\n");
  const { seen } = run(e, [[0, "t", 36], [1, "t", 34], [2, "t", 33.5], [3, "t", 36], [4, "t", 33]]);
  assert.deepEqual(seen, ["firing@0", "resolved@4"]);
});

Deno.test("`clear` and `clear_for` resolve only after the clear condition held long enough", () => {
  const e = engine(`rules:
  - id: hot
    sensor_type: temperature
    condition: { ">": [{ var: value }, 35] }
    clear: { "<": [{ var: value }, 30] }
    clear_for: 60s
    priority: high
`);
  const { seen } = run(e, [[0, "t", 40], [10, "t", 29], [30, "t", 32], [40, "t", 29], [90, "t", 28], [
    100,
    "t",
    28,
  ]]);
  assert.deepEqual(seen, ["firing@0", "resolved@100"]);
});

Deno.test("repeat_interval re-notifies with the same alert_id until acknowledged", () => {
  const e = engine(HOT + "    repeat_interval: 1m\n");
  const out = emptyOutput();
  for (let s = 0; s <= 150; s += 10) e.onEvent(ev("t", 40), T0 + s * 1000, out);
  assert.deepEqual(out.alerts.map((a) => a.repeat), [0, 1, 2]);
  assert.equal(new Set(out.alerts.map((a) => a.alert_id)).size, 1);
  const acked = e.tracker.acknowledge(out.alerts[0]!.alert_id);
  assert.equal(acked?.acknowledged, true);
  out.alerts.length = 0;
  for (let s = 160; s <= 400; s += 10) e.onEvent(ev("t", 40), T0 + s * 1000, out);
  assert.equal(out.alerts.length, 0, "an acknowledged alert does not re-notify");
  e.onEvent(ev("t", 20), T0 + 410_000, out);
  assert.equal(out.alerts[0]!.state, "resolved");
  assert.equal(out.alerts[0]!.acknowledged, true);
});

Deno.test("notify_resolved: false sends no resolved notice", () => {
  const e = engine(HOT + "    notify_resolved: false\n");
  const { seen } = run(e, [[0, "t", 40], [1, "t", 20], [2, "t", 40]]);
  assert.deepEqual(seen, ["firing@0", "firing@2"]);
});

Deno.test("a 5-minute tumbling window yields the expected aggregate and alert", () => {
  const e = engine(`rules:
  - id: co2-avg
    sensor_type: co2
    window: { type: tumbling, size: 5m }
    condition: { ">": [{ var: avg }, 800] }
    value_of: avg
    publish: true
    priority: high
    message: "CO2 avg {{avg}} max {{max}} over {{count}} readings"
`);
  const out = emptyOutput();
  // 0..299 s: values 700..999 (avg 849.5); then one event at 300 s closes the window.
  for (let s = 0; s < 300; s++) e.onEvent(ev("co2-001", 700 + s, "co2"), T0 + s * 1000, out);
  assert.equal(out.aggregates.length, 0, "the window is still open");
  e.onEvent(ev("co2-001", 400, "co2"), T0 + 300_000, out);
  assert.equal(out.aggregates.length, 1);
  const agg = out.aggregates[0]!;
  assert.equal(agg.count, 300);
  assert.equal(agg.avg_value, 849.5);
  assert.equal(agg.min_value, 700);
  assert.equal(agg.max_value, 999);
  assert.equal(agg.window_start, new Date(T0).toISOString());
  assert.equal(agg.window_end, new Date(T0 + 300_000).toISOString());
  assert.equal(out.alerts.length, 1);
  assert.equal(out.alerts[0]!.value, 849.5);
  assert.equal(out.alerts[0]!.message, "CO2 avg 849.5 max 999 over 300 readings");
});

Deno.test("sliding windows put an event in every window that covers it", () => {
  const e = engine(`rules:
  - id: s
    sensor_type: temperature
    window: { type: sliding, size: 60s, slide: 20s }
    condition: { ">": [{ var: count }, 100] }
    publish: true
    priority: low
`);
  const out = emptyOutput();
  for (let s = 0; s < 120; s += 10) e.onEvent(ev("t", s), T0 + s * 1000, out);
  e.tick(out, 0, T0 + 1_000_000);
  const windows = out.aggregates.map((a) => `${(Date.parse(a.window_start) - T0) / 1000}:${a.count}`);
  // Windows start every 20 s; those starting before 0 hold the first events only.
  assert.deepEqual(windows, ["-40:2", "-20:4", "0:6", "20:6", "40:6", "60:6", "80:4", "100:2"]);
});

Deno.test("count windows close every N events per group and compute every function", () => {
  const e = engine(`rules:
  - id: c
    sensor_type: temperature
    window: { type: count, size: 4 }
    condition: { ">": [{ var: p95 }, 0] }
    message: "{{sum}} {{stddev}} {{first}} {{last}} {{rate}} {{p95}}"
    publish: true
    priority: low
`);
  const out = emptyOutput();
  [2, 4, 4, 6].forEach((v, i) => e.onEvent(ev("a", v), T0 + i * 1000, out));
  e.onEvent(ev("b", 1), T0, out);
  assert.equal(out.aggregates.length, 1);
  const a = out.aggregates[0]!;
  assert.equal(a.avg_value, 4);
  assert.equal(a.stddev, Math.sqrt(2));
  assert.equal(a.first, 2);
  assert.equal(a.last, 6);
  assert.equal(a.rate, 4 / 3);
  assert.equal(a.p95, 6);
  assert.equal(a.sum, 16);
});

Deno.test("late events within allowed_lateness update their window; later ones are counted and left out", () => {
  const e = engine(`rules:
  - id: w
    sensor_type: temperature
    window: { type: tumbling, size: 60s }
    allowed_lateness: 30s
    condition: { ">": [{ var: avg }, 1000] }
    publish: true
    priority: low
`);
  const out = emptyOutput();
  e.onEvent(ev("t", 10), T0 + 10_000, out);
  e.onEvent(ev("t", 20), T0 + 70_000, out); // watermark 70 s: window [0,60) still open (60 + 30 > 70)
  e.onEvent(ev("t", 30), T0 + 50_000, out); // late but within lateness: counted in [0,60)
  e.onEvent(ev("t", 40), T0 + 95_000, out); // watermark 95 s closes [0,60)
  e.onEvent(ev("t", 50), T0 + 55_000, out); // too late
  assert.equal(out.aggregates.length, 1);
  assert.equal(out.aggregates[0]!.count, 2);
  assert.equal(out.aggregates[0]!.avg_value, 20);
  assert.equal(e.lateEvents, 1);
});

Deno.test("a deadman rule alerts after absent_for, past the startup grace, and resolves when data returns", () => {
  const e = engine(`rules:
  - id: silent
    sensor_type: temperature
    absent_for: 2m
    priority: high
`);
  const { seen } = run(e, [[0, "t1", 20], [0, "t2", 20], [100, "t2", 20], [200, "t2", 20], [300, "t1", 21]], [
    60,
    119,
    121,
    180,
    260,
    330,
  ]);
  // t1 is silent from 0: alert at the first tick ≥ 120 s; t2 goes silent after 200 s (alert at 330 s).
  // t1 speaks again at 300 s: resolved.
  assert.deepEqual(seen, ["firing@121", "resolved@300", "firing@330"]);
});

Deno.test("a deadman rule stays quiet during the startup grace period", () => {
  const e = engine(`rules:
  - id: silent
    sensor_id: [temp-404]
    sensor_type: temperature
    absent_for: 1m
    startup_grace: 5m
    priority: high
`);
  const { seen } = run(e, [[0, "other", 1]], [61, 200, 299, 301]);
  assert.deepEqual(seen, ["firing@301"]);
});

Deno.test("setRules() keeps the episodes of unchanged rules and ends those of changed ones", () => {
  const a = parseRuleFile("t.yaml", HOT);
  const e = new RuleEngine();
  e.setRules(new RuleSet(a.rules));
  const out = emptyOutput();
  e.onEvent(ev("t", 40), T0, out);
  assert.equal(out.alerts.length, 1);
  e.setRules(new RuleSet(parseRuleFile("t.yaml", HOT).rules));
  e.onEvent(ev("t", 41), T0 + 1000, out);
  assert.equal(out.alerts.length, 1, "same definition: the episode continues, no second alert");
  e.setRules(new RuleSet(parseRuleFile("t.yaml", HOT.replace("35", "36")).rules));
  e.onEvent(ev("t", 41), T0 + 2000, out);
  assert.deepEqual(
    out.alerts.map((a) => a.state),
    ["firing", "resolved", "firing"],
    "changed condition: the episode ends, a new one starts",
  );
});
