/**
 * The engine's clocks: the partition's clock (never ahead of the wall clock in a live stream), each
 * group's own time for its windows, and each sensor's newest time for its event rules.
 */
import assert from "node:assert/strict";
import type { SensorAlert, SensorEvent } from "../../src/contract/schemas.ts";
import { emptyOutput, type EngineOutput, type RuleEngine } from "../../src/rules/engine.ts";
import { engine, ev, T0 } from "../helpers/engine.ts";

const at = (a: { timestamp: string }) => (Date.parse(a.timestamp) - T0) / 1000;
const brief = (a: SensorAlert) => `${a.sensor_id} ${a.state}@${at(a)}`;

/** A window rule that never fires: it publishes each window's aggregate, which is what is looked at. */
const AGGREGATES_ONLY = `rules:
  - id: w
    sensor_type: temperature
    window: { type: tumbling, size: 1m }
    condition: { ">": [{ var: avg }, 1000] }
    publish: true
    priority: low
`;

/** A deadman rule with no startup grace: a sensor silent for 30 s fires at once. */
const SILENT_30S = `rules:
  - id: silent
    absent_for: 30s
    startup_grace: 0s
    priority: high
`;

/**
 * A live stream: sensor `a` every `every` seconds for `seconds`, arriving when stamped, and one event of
 * `odd` (type `oddType`) at 10 s stamped `lead` seconds ahead; the service's 1 s ticks in between.
 */
function live(
  e: RuleEngine,
  seconds: number,
  every: number,
  odd: string,
  oddType: SensorEvent["sensor_type"],
  lead: number,
): EngineOutput {
  const out = emptyOutput();
  for (let s = 0; s <= seconds; s++) {
    const wall = T0 + s * 1000;
    if (s % every === 0) e.onEvent(ev("a", 20), wall, out, wall);
    if (s === 10) e.onEvent(ev(odd, 20, oddType), wall + lead * 1000, out, wall);
    e.tick(out, wall + 500);
  }
  return out;
}

Deno.test("an event stamped 4 minutes ahead by a sensor no rule matches leaves another sensor's windows whole", () => {
  const e = engine(AGGREGATES_ONLY);
  const out = live(e, 200, 1, "co2-odd", "co2", 240);
  assert.deepEqual(out.aggregates.map((a) => `${a.sensor_id}:${a.count}`), ["a:60", "a:60", "a:60"]);
  assert.equal(e.lateEvents, 0);
});

Deno.test("an event stamped 4 minutes ahead in a window rule's scope only moves its own group's windows", () => {
  const e = engine(AGGREGATES_ONLY);
  const out = live(e, 200, 1, "odd", "temperature", 240);
  assert.deepEqual(out.aggregates.filter((a) => a.sensor_id === "a").map((a) => a.count), [60, 60, 60]);
  assert.equal(e.lateEvents, 0);
});

Deno.test("an event stamped 4 minutes ahead does not fire a deadman rule for a sensor reporting every 3 s", () => {
  const e = engine(SILENT_30S);
  const out = live(e, 120, 3, "odd", "temperature", 240);
  assert.deepEqual(out.alerts.map(brief), []);
});

Deno.test("a deadman rule still notices a silent sensor while the clock runs on wall time", () => {
  const e = engine(SILENT_30S);
  const out = emptyOutput();
  e.onEvent(ev("a", 1), T0, out, T0);
  for (let s = 1; s <= 40; s++) e.tick(out, T0 + s * 1000);
  assert.deepEqual(out.alerts.map(brief), ["a firing@30"]);
});

/** Feeds (arrival order) [seconds, value] events of one sensor through an event rule. */
function arrivals(yaml: string, feed: [number, number][]): SensorAlert[] {
  const e = engine(yaml);
  const out = emptyOutput();
  for (const [s, v] of feed) e.onEvent(ev("t", v), T0 + s * 1000, out);
  return out.alerts;
}

const ABOVE_30 = `rules:
  - id: hot
    sensor_type: temperature
    threshold: { max: 30 }
    priority: high
`;

Deno.test("an event older than the sensor's newest does not change an event rule's episode", () => {
  const alerts = arrivals(ABOVE_30, [[0, 31], [60, 31], [30, 20]]);
  assert.deepEqual(alerts.map(brief), ["t firing@0"]);
});

Deno.test("an event older than the sensor's newest does not open an episode either", () => {
  const alerts = arrivals(ABOVE_30, [[0, 20], [60, 20], [30, 31]]);
  assert.deepEqual(alerts.map(brief), []);
});

Deno.test("with `for`, a late event never resolves an episode before it fired", () => {
  const alerts = arrivals(ABOVE_30 + "    for: 1m\n", [[140, 31], [200, 31], [150, 20], [260, 20]]);
  assert.deepEqual(alerts.map(brief), ["t firing@200", "t resolved@260"]);
  for (const a of alerts) assert.ok(Date.parse(a.timestamp) >= Date.parse(String(a.fired_at)));
});

Deno.test("a deadman alert resolved by an event stamped before it fired is stamped at its firing time", () => {
  const e = engine(SILENT_30S);
  const out = emptyOutput();
  e.onEvent(ev("a", 1), T0, out, T0);
  e.tick(out, T0 + 31_000); // fires at 31 s by the wall clock
  e.onEvent(ev("a", 1), T0 + 29_000, out, T0 + 32_000); // delayed in transit: stamped 29 s
  assert.deepEqual(out.alerts.map(brief), ["a firing@31", "a resolved@31"]);
});

Deno.test("flush() closes the last windows at the end of the input", () => {
  const e = engine(`rules:
  - id: w
    sensor_type: temperature
    window: { type: tumbling, size: 1m }
    threshold: { max: 30 }
    publish: true
    priority: low
`);
  const out = emptyOutput();
  for (let s = 0; s < 90; s += 10) e.onEvent(ev("t", 40), T0 + s * 1000, out);
  assert.deepEqual(out.aggregates.map((a) => a.count), [6]);
  e.flush(out);
  assert.deepEqual(out.aggregates.map((a) => a.count), [6, 3]);
  assert.deepEqual(out.alerts.map(brief), ["t firing@60"]);
});

Deno.test("a deadman rule judged by event time alone fires when another sensor's events move the clock", () => {
  const e = engine(`rules:
  - id: silent
    absent_for: 5m
    priority: high
`);
  const out = emptyOutput();
  e.onEvent(ev("quiet", 1), T0, out);
  for (let s = 0; s <= 600; s += 10) e.onEvent(ev("busy", 1), T0 + s * 1000, out);
  e.onEvent(ev("quiet", 1), T0 + 540_000, out);
  assert.deepEqual(out.alerts.map(brief), ["quiet firing@300", "quiet resolved@540"]);
});

Deno.test("a deadman alert is not resolved by a delayed event stamped before its sensor went silent", () => {
  const e = engine(SILENT_30S);
  const out = emptyOutput();
  e.onEvent(ev("a", 1), T0 + 10_000, out, T0 + 10_000);
  e.tick(out, T0 + 41_000);
  e.onEvent(ev("a", 1), T0 + 5_000, out, T0 + 42_000); // stamped before the newest: no news from now
  e.onEvent(ev("a", 1), T0 + 43_000, out, T0 + 43_000);
  assert.deepEqual(out.alerts.map(brief), ["a firing@41", "a resolved@43"]);
});
