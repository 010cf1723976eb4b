/**
 * The clock judges deadman rules by the sensors that are due, not by walking every sensor: a look at
 * 100,000 sensors held the event loop for as long as it took to look at each of them again, at every
 * look, the silent ones most (scripts/bench/deadman_tick.ts).
 */
import assert from "node:assert/strict";
import type { Sample } from "../../src/alerts/lifecycle.ts";
import { emptyOutput, RuleEngine } from "../../src/rules/engine.ts";
import { engine, ev, ruleSet, T0 } from "../helpers/engine.ts";

const SILENT = `rules:
  - id: silent
    sensor_type: temperature
    absent_for: 1m
    startup_grace: 0s
    priority: normal
`;

/** Counts the observations the engine hands its alert tracker, by group. */
function spy(e: RuleEngine): Map<string, number> {
  const seen = new Map<string, number>();
  const observe = e.tracker.observe.bind(e.tracker);
  e.tracker.observe = (rule, s: Sample, verdict, cleared, out) => {
    seen.set(s.group, (seen.get(s.group) ?? 0) + 1);
    return observe(rule, s, verdict, cleared, out);
  };
  return seen;
}

Deno.test("RuleEngine.tick() leaves alone the silent sensors whose alert is firing and due for nothing", () => {
  const e = engine(SILENT);
  e.trackChanges();
  const out = emptyOutput();
  const at = (s: number) => T0 + s * 1000;
  for (let i = 0; i < 1000; i++) e.onEvent(ev(`quiet-${i}`, 21), at(0), out, at(0));
  e.tick(out, at(61));
  assert.equal(out.alerts.filter((a) => a.state === "firing").length, 1000);
  e.takeChanges();
  // One sensor goes on speaking: its deadline comes due again and again, the others' never.
  const observed = spy(e);
  for (let s = 62; s < 600; s++) {
    e.onEvent(ev("live", 21), at(s) - 500, out, at(s));
    e.tick(out, at(s));
  }
  assert.deepEqual([...observed.keys()], [], "no silent sensor was looked at again");
  // Nor written to the changelog again: their episodes did not change.
  assert.deepEqual(e.takeChanges().filter((c) => c.kind === "episode"), []);
  assert.equal(out.alerts.length, 1000);
});

Deno.test("RuleEngine.tick() looks at a sensor that spoke since it was queued only when its new deadline comes", () => {
  const e = engine(SILENT);
  const out = emptyOutput();
  const at = (s: number) => T0 + s * 1000;
  for (let i = 0; i < 100; i++) e.onEvent(ev(`s-${i}`, 21), at(0), out, at(0));
  const observed = spy(e);
  // Every sensor speaks every 10 s for ten minutes: none is ever silent for a minute.
  for (let s = 10; s <= 600; s += 10) {
    for (let i = 0; i < 100; i++) e.onEvent(ev(`s-${i}`, 21), at(s), out, at(s));
    e.tick(out, at(s) + 5000);
  }
  assert.deepEqual([...observed.keys()], []);
  assert.equal(out.alerts.length, 0);
  // Then one goes quiet: it alone is alerted on, at the first event of the others a minute after its last.
  for (let s = 610; s <= 700; s += 10) {
    for (let i = 1; i < 100; i++) e.onEvent(ev(`s-${i}`, 21), at(s), out, at(s));
    e.tick(out, at(s) + 5000);
  }
  assert.deepEqual(out.alerts.map((a) => [a.sensor_id, a.state, a.timestamp]), [
    ["s-0", "firing", new Date(at(660)).toISOString()],
  ]);
  assert.deepEqual([...observed.entries()], [["s-0", 1]]);
});

Deno.test("deadman: an error during a look loses no sensor, each fires at a later look as the walk of every sensor did", () => {
  const rules = ruleSet(`rules:
  - id: silent
    sensor_type: temperature
    absent_for: 10s
    startup_grace: 0s
    priority: normal
    repeat_interval: 20s
`);
  const fired = (walk: boolean) => {
    const e = new RuleEngine({ deadmanWalk: walk });
    e.setRules(rules);
    for (const s of ["a", "b", "c"]) e.onEvent(ev(s, 20), T0, emptyOutput(), T0);
    // The first observation of the first look past the deadlines fails (a bug, an impossible clock).
    const observe = e.tracker.observe.bind(e.tracker);
    let calls = 0;
    e.tracker.observe = ((...args: Parameters<typeof observe>) => {
      if (calls++ === 0) throw new Error("boom");
      return observe(...args);
    }) as typeof observe;
    const first = emptyOutput();
    e.tick(first, T0 + 11_000);
    assert.equal(first.errors.length, 1, "the error is reported");
    const ids = new Set(first.alerts.map((a) => a.sensor_id));
    for (let t = 12_000; t <= 60_000; t += 1000) {
      const out = emptyOutput();
      e.tick(out, T0 + t);
      for (const a of out.alerts) ids.add(a.sensor_id);
    }
    return [...ids].sort();
  };
  assert.deepEqual(fired(true), ["a", "b", "c"]);
  assert.deepEqual(fired(false), ["a", "b", "c"]);
});
