/** What the engine's change tracking hands the changelog: the state that changed, nothing else. */
import assert from "node:assert/strict";
import { emptyOutput, RuleEngine } from "../../src/rules/engine.ts";
import { ev, ruleSet, T0 } from "../helpers/engine.ts";

const HOT = `rules:
  - id: hot
    sensor_type: temperature
    threshold: { max: 35 }
    priority: high
    message: "hot {{value}}"
`;

const episodes = (e: RuleEngine) =>
  e.takeChanges().map((c) => c.kind === "episode" ? c.value?.phase ?? null : undefined)
    .filter((phase) => phase !== undefined);

Deno.test("takeChanges() leaves out an episode that went on unchanged (its sensor still out of range), and has it again when it ends", () => {
  const e = new RuleEngine();
  e.trackChanges();
  e.setRules(ruleSet(HOT));
  const out = emptyOutput();
  e.onEvent(ev("t", 40), T0, out);
  assert.deepEqual(episodes(e), ["firing"]);
  e.onEvent(ev("t", 41), T0 + 1000, out);
  e.onEvent(ev("t", 42), T0 + 2000, out);
  assert.deepEqual(episodes(e), [], "nothing of the episode changed");
  e.onEvent(ev("t", 20), T0 + 3000, out);
  assert.deepEqual(episodes(e), [null], "the episode ended");
  assert.deepEqual(out.alerts.map((a) => a.state), ["firing", "resolved"]);
});

const AVG_HOT = `rules:
  - id: avg-hot
    sensor_type: temperature
    window: { type: tumbling, size: 1m }
    threshold: { max: 35 }
    value_of: avg
    priority: high
    message: "avg {{avg}}"
`;

Deno.test("takeChanges() has no episode of a window rule whose closed windows raised nothing", () => {
  const e = new RuleEngine();
  e.trackChanges();
  e.setRules(ruleSet(AVG_HOT));
  const out = emptyOutput();
  for (let s = 0; s < 240; s += 10) e.onEvent(ev("t", 20), T0 + s * 1000, out);
  const changes = e.takeChanges();
  assert.ok(changes.some((c) => c.kind === "window"), "the windows changed");
  assert.deepEqual(changes.filter((c) => c.kind === "episode"), [], "no episode began or ended");
  for (let s = 240; s < 480; s += 10) e.onEvent(ev("t", 50), T0 + s * 1000, out);
  assert.deepEqual(episodes(e), ["firing"], "a window above the threshold fires");
  assert.deepEqual(out.alerts.map((a) => a.state), ["firing"]);
});
