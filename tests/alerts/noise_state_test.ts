import assert from "node:assert/strict";
import type { SensorAlert } from "../../src/contract/schemas.ts";
import type { StateChange } from "../../src/rules/changes.ts";
import { emptyOutput, type RuleEngine } from "../../src/rules/engine.ts";
import { engine, ev, T0 } from "../helpers/engine.ts";

const RULES = `rules:
  - id: hot
    sensor_type: temperature
    threshold: { max: 30 }
    priority: normal
    flapping: { window: 10m, max_transitions: 2 }
    escalate: [{ after: 5m, priority: high }, { after: 10m, priority: critical }]
`;

const MIN = 60_000;

/** Feeds values one minute apart from `start` minutes; returns the alerts. */
function feed(e: RuleEngine, start: number, values: number[]): SensorAlert[] {
  const out = emptyOutput();
  values.forEach((v, i) => e.onEvent(ev("t1", v), T0 + (start + i) * MIN, out));
  return out.alerts;
}

/** A fresh engine restored from `entries`, as after a restart or a rebalance. */
function restored(entries: StateChange[]): RuleEngine {
  const e = engine(RULES);
  e.trackChanges();
  e.importState(entries);
  return e;
}

Deno.test("a flapping episode stays flapping after its state is restored from the changelog", () => {
  const before = engine(RULES);
  before.trackChanges();
  const first = feed(before, 0, [35, 20, 35]);
  assert.deepEqual(first.map((a) => [a.state, a.flapping ?? false]), [
    ["firing", false],
    ["resolved", false],
    ["firing", true],
  ]);
  const after = restored(before.takeChanges());
  // Still flapping: these transitions are held back, then one stable notice (resolved) 10m after the last.
  assert.deepEqual(feed(after, 3, [20, 35, 20]), []);
  const settled = feed(after, 6, Array(12).fill(20));
  assert.deepEqual(settled.map((a) => [a.state, a.flapping, a.timestamp]), [
    ["resolved", false, new Date(T0 + 15 * MIN).toISOString()],
  ]);
});

Deno.test("an escalated episode keeps its level and priority after its state is restored", () => {
  const before = engine(RULES.replace("max_transitions: 2", "max_transitions: 20"));
  before.trackChanges();
  const first = feed(before, 0, Array(7).fill(35));
  assert.deepEqual(first.map((a) => [a.priority, a.escalation]), [["normal", 0], ["high", 1]]);
  const after = engine(RULES.replace("max_transitions: 2", "max_transitions: 20"));
  after.importState(before.takeChanges());
  const next = feed(after, 7, [35, 35, 35, 35, 20]);
  assert.deepEqual(next.map((a) => [a.state, a.priority, a.escalation]), [
    ["firing", "critical", 2],
    ["resolved", "critical", 2],
  ]);
});

Deno.test("the flapping state of a sensor flipping on every event stays small however long the window", () => {
  const e = engine(RULES.replace("window: 10m", "window: 1d"));
  e.trackChanges();
  const out = emptyOutput();
  // 20,000 transitions a second apart, all within the window: only the newest `max_transitions + 1`
  // decide anything.
  for (let i = 0; i < 20_000; i++) e.onEvent(ev("t1", i % 2 === 0 ? 35 : 20), T0 + i * 1000, out);
  const flap = e.takeChanges().find((c) => c.kind === "flap");
  assert.ok(flap?.value, "a flapping state is kept");
  const bytes = JSON.stringify(flap.value).length;
  assert.ok(bytes < 4096, `the changelog record of the flapping state holds ${bytes} characters`);
  assert.equal(flap.value.flapping, true);
});
