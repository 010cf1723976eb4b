/** What a rule edit does to the state of a running engine: carry over, or end with a notice. */
import assert from "node:assert/strict";
import type { SensorAlert } from "../../src/contract/schemas.ts";
import { emptyOutput, RuleEngine } from "../../src/rules/engine.ts";
import { ev, ruleSet as rules, T0 } from "../helpers/engine.ts";

const at = (a: { timestamp: string }) => (Date.parse(a.timestamp) - T0) / 1000;
const brief = (a: SensorAlert) => `${a.rule_id} ${a.sensor_id} ${a.state}@${at(a)}`;

const DEADMAN = (message: string, absentFor = "5m") =>
  `rules:
  - id: silent
    sensor_id: [a, b]
    sensor_type: temperature
    absent_for: ${absentFor}
    priority: normal
    message: "${message} {{sensor_id}} {{absent_for}}"
`;

const HOT = (max: number, message: string) =>
  `rules:
  - id: hot
    sensor_type: temperature
    threshold: { max: ${max} }
    priority: high
    message: "${message} {{value}}"
`;

/** An engine under the rules of `yaml`, recording its changelog when `track`, and an output for it. */
function engineUnder(yaml: string, track = false) {
  const e = new RuleEngine();
  if (track) e.trackChanges();
  e.setRules(rules(yaml));
  return { e, out: emptyOutput() };
}

/** An engine under `hot` at 35 whose sensor t fired at T0, with 40. */
function hotFiring(track = false) {
  const { e, out } = engineUnder(HOT(35, "hot"), track);
  e.onEvent(ev("t", 40), T0, out);
  return { e, out };
}

Deno.test("editing only the message of a deadman rule keeps its timers: no alert for a sensor that just reported", () => {
  const { e, out } = engineUnder(DEADMAN("silent"));
  for (let s = 0; s <= 600; s += 5) {
    e.onEvent(ev("a", 1), T0 + s * 1000, out);
    e.onEvent(ev("b", 1), T0 + s * 1000, out);
  }
  e.setRules(rules(DEADMAN("quiet")));
  e.tick(out, 0, T0 + 601_000); // the service's next tick comes before the next event
  for (let s = 605; s <= 900; s += 5) {
    e.onEvent(ev("a", 1), T0 + s * 1000, out);
    e.onEvent(ev("b", 1), T0 + s * 1000, out);
    e.tick(out, 0, T0 + s * 1000);
  }
  assert.deepEqual(out.alerts.map(brief), []);
});

Deno.test("editing only the message of a firing rule carries its episode over under the same alert_id", () => {
  const { e, out } = hotFiring();
  e.setRules(rules(HOT(35, "still hot")));
  e.onEvent(ev("t", 41), T0 + 1000, out);
  e.onEvent(ev("t", 20), T0 + 2000, out);
  assert.deepEqual(out.alerts.map(brief), ["hot t firing@0", "hot t resolved@2"]);
  assert.equal(out.alerts[0]!.alert_id, out.alerts[1]!.alert_id);
  assert.equal(out.alerts[1]!.message, "Resolved: still hot 20");
});

Deno.test("a firing alert of a rule whose condition changed ends with a resolved notice saying why", () => {
  const { e, out } = hotFiring();
  e.setRules(rules(HOT(45, "hot")));
  e.onEvent(ev("t", 40), T0 + 1000, out);
  assert.deepEqual(out.alerts.map(brief), ["hot t firing@0", "hot t resolved@0"]);
  const notice = out.alerts[1]!;
  assert.equal(notice.alert_id, out.alerts[0]!.alert_id);
  assert.equal(notice.resolved_reason, "rule changed");
  assert.equal(notice.message, "Resolved (rule changed): hot 40");
});

Deno.test("a firing alert of a removed rule ends with a resolved notice, stamped at the reload and published by the next tick", () => {
  const { e, out } = hotFiring();
  e.setRules(rules("rules: []\n"));
  e.tick(out, 0, T0 + 5000);
  assert.deepEqual(out.alerts.map(brief), ["hot t firing@0", "hot t resolved@0"]);
  assert.equal(out.alerts[1]!.resolved_reason, "rule removed");
});

Deno.test("a silent sensor is alerted on again after its deadman rule's condition changed", () => {
  const { e, out } = engineUnder(DEADMAN("silent"));
  for (let s = 0; s <= 400; s += 5) {
    e.onEvent(ev("a", 1), T0 + s * 1000, out);
    if (s <= 100) e.onEvent(ev("b", 1), T0 + s * 1000, out);
  }
  e.setRules(rules(DEADMAN("silent", "4m")));
  for (let s = 405; s <= 600; s += 5) e.onEvent(ev("a", 1), T0 + s * 1000, out);
  e.onEvent(ev("b", 1), T0 + 610_000, out);
  assert.deepEqual(out.alerts.map(brief), [
    "silent b firing@400",
    "silent b resolved@400",
    "silent b firing@405",
    "silent b resolved@610",
  ]);
  assert.equal(out.alerts[1]!.resolved_reason, "rule changed");
  assert.equal(out.alerts[3]!.message, "Resolved: silent b 510s");
});

Deno.test("a restart under a changed rule ends the restored firing alert with a resolved notice saying why", () => {
  const { e: before, out } = hotFiring(true);
  const changelog = before.takeChanges();
  assert.equal(out.alerts.length, 1);

  const after = engineUnder(HOT(45, "hot"), true).e;
  after.importState(changelog);
  after.takeChanges();
  after.onEvent(ev("t", 40), T0 + 60_000, out);
  assert.deepEqual(out.alerts.map(brief), ["hot t firing@0", "hot t resolved@60"]);
  assert.equal(out.alerts[1]!.resolved_reason, "rule changed");
  assert.equal(out.alerts[1]!.alert_id, out.alerts[0]!.alert_id);
  // The changelog learns that the episode ended.
  assert.deepEqual(after.takeChanges().filter((c) => c.kind === "episode").map((c) => c.value), [null]);
});

Deno.test("a restart under an unchanged rule, whose message alone changed, continues the restored episode", () => {
  const { e: before, out } = hotFiring(true);
  const changelog = before.takeChanges();

  const after = new RuleEngine();
  after.setRules(rules(HOT(35, "still hot")));
  after.importState(changelog);
  after.onEvent(ev("t", 41), T0 + 60_000, out);
  after.onEvent(ev("t", 20), T0 + 70_000, out);
  assert.deepEqual(out.alerts.map(brief), ["hot t firing@0", "hot t resolved@70"]);
  assert.equal(out.alerts[1]!.alert_id, out.alerts[0]!.alert_id);
});

Deno.test("a restart under a deadman rule whose absent_for changed keeps its sensors' last-seen times", () => {
  const { e: before, out } = engineUnder(DEADMAN("silent"), true);
  before.onEvent(ev("b", 1), T0, out);
  for (let s = 0; s <= 100; s += 5) before.onEvent(ev("a", 1), T0 + s * 1000, out);
  const changelog = before.takeChanges();

  const after = new RuleEngine();
  after.setRules(rules(DEADMAN("silent", "4m")));
  after.importState(changelog);
  for (let s = 105; s <= 400; s += 5) after.onEvent(ev("a", 1), T0 + s * 1000, out);
  // Quiet for the startup grace (4m from 105 s), then b, last seen at 0 s, is 345 s silent.
  assert.deepEqual(out.alerts.map(brief), ["silent b firing@345"]);
  assert.equal(out.alerts[0]!.message, "silent b 345s");
});

Deno.test("a changelog written before state fingerprints (the whole definition's) still restores an unchanged rule", () => {
  const ruleSet = rules(HOT(35, "hot"));
  const before = new RuleEngine();
  before.trackChanges();
  before.setRules(ruleSet);
  const out = emptyOutput();
  before.onEvent(ev("t", 40), T0, out);
  const legacy = before.takeChanges().map((c) =>
    c.kind === "episode" && c.value !== null
      ? { ...c, value: { ...c.value, rule_hash: ruleSet.byId.get("hot")!.hash } }
      : c
  );

  const after = new RuleEngine();
  after.setRules(rules(HOT(35, "hot")));
  after.importState(legacy);
  after.onEvent(ev("t", 20), T0 + 10_000, out);
  assert.deepEqual(out.alerts.map(brief), ["hot t firing@0", "hot t resolved@10"]);
  assert.equal(out.alerts[1]!.resolved_reason, undefined);
});

Deno.test("a sensor that reported before a reload is judged by the new rules at its next event", () => {
  const { e, out } = engineUnder(HOT(30, "hot"));
  e.onEvent(ev("a", 25), T0, out);
  e.setRules(rules(HOT(20, "hot")));
  e.onEvent(ev("a", 25), T0 + 1000, out);
  assert.deepEqual(out.alerts.map(brief), ["hot a firing@1"]);
});

Deno.test("a sensor id reported under two sensor types is judged by each type's rules", () => {
  const e = new RuleEngine();
  e.setRules(rules(`rules:
  - id: hot
    sensor_type: temperature
    threshold: { max: 30 }
    priority: high
    message: "hot {{value}}"
  - id: damp
    sensor_type: humidity
    threshold: { max: 80 }
    priority: normal
    message: "damp {{value}}"
`));
  const out = emptyOutput();
  e.onEvent(ev("x", 50, "temperature"), T0, out);
  e.onEvent(ev("x", 90, "humidity"), T0 + 1000, out);
  e.onEvent(ev("x", 90, "temperature"), T0 + 2000, out);
  assert.deepEqual(out.alerts.map(brief), ["hot x firing@0", "damp x firing@1"]);
});
