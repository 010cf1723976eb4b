import assert from "node:assert/strict";
import { formatProblem, parseRuleFile } from "../../src/rules/load.ts";
import { Inhibitor, MAX_COUNTED_RULES, OTHER_RULES } from "../../src/rules/inhibit.ts";
import { RuleSet } from "../../src/rules/ruleset.ts";
import { parseRuleTestFile, runRuleTest } from "../../src/rules/testing.ts";
import { alert } from "../helpers/notifiers.ts";

const RULES = `rules:
  - id: hot
    sensor_type: temperature
    threshold: { max: 30 }
    priority: high
inhibit:
  - source: { rule_id: gateway-down }
    target: { sensor_type: [temperature, humidity], sensor_id: "temp-*" }
    equal: [location]
  - source: { priority: critical, labels: { team: safety } }
    target: { priority: high }
    equal: [sensor_id, labels.team]
`;

Deno.test("parseRuleFile() compiles a file's inhibit rules with where each was written", () => {
  const r = parseRuleFile("rules/noise.yaml", RULES);
  assert.deepEqual(r.problems, []);
  assert.deepEqual(r.inhibitions.map((i) => i.source_location.line), [7, 10]);
  const [gateway, critical] = r.inhibitions;
  const gw = alert({ rule_id: "gateway-down", sensor_id: "gw-1", location: "Hall 7" });
  const t = alert({ rule_id: "hot", sensor_type: "temperature", sensor_id: "temp-9", location: "Hall 7" });
  assert.equal(gateway!.source(gw), true);
  assert.equal(gateway!.target(t), true);
  assert.equal(gateway!.target({ ...t, sensor_id: "hum-1" }), false);
  assert.equal(gateway!.key(gw), gateway!.key(t));
  assert.notEqual(gateway!.key(gw), gateway!.key({ ...t, location: "Hall 8" }));
  const crit = alert({ priority: "critical", sensor_id: "s", labels: { team: "safety" } });
  assert.equal(critical!.source(crit), true);
  assert.equal(critical!.source({ ...crit, labels: { team: "ops" } }), false);
  assert.equal(
    critical!.key(crit),
    critical!.key(alert({ priority: "high", sensor_id: "s", labels: { team: "safety" } })),
  );
  // A label the alert lacks is a value of its own: it never equals a present one.
  assert.notEqual(critical!.key(crit), critical!.key(alert({ sensor_id: "s", labels: {} })));
  assert.equal(new RuleSet(r.rules, r.inhibitions).inhibitions.length, 2);
});

Deno.test("parseRuleFile() names file, line and field of a bad inhibit rule", () => {
  const r = parseRuleFile(
    "rules/noise.yaml",
    `rules: []
inhibit:
  - source: { rule_id: gateway-down }
    target: {}
    equal: [locaton]
  - source: { priority: urgent }
    target: { rule_id: hot }
`,
  );
  const found = r.problems.map(formatProblem);
  assert.deepEqual(r.inhibitions, []);
  assert.equal(found.length, 3, found.join("\n"));
  assert.match(found[0]!, /^rules\/noise\.yaml:4:\d+ -: Field "target": needs at least one of /);
  assert.match(found[1]!, /^rules\/noise\.yaml:5:\d+ -: Field "equal\.0": must be .*"labels\.<key>"/);
  assert.match(found[2]!, /^rules\/noise\.yaml:6:\d+ -: Field "source\.priority": .*low.*critical/);
});

Deno.test("parseRuleFile() refuses an inhibit source whose rule never notifies its resolution", () => {
  const r = parseRuleFile(
    "rules/noise.yaml",
    `rules:
  - id: gateway-down
    sensor_type: motion
    threshold: { max: 1 }
    priority: critical
    notify_resolved: false
inhibit:
  - source: { rule_id: gateway-down }
    target: { priority: high }
`,
  );
  assert.deepEqual(r.problems.map(formatProblem), [
    'rules/noise.yaml:8:24 -: Field "source.rule_id": rule "gateway-down" has notify_resolved: false, ' +
    "so the notifier stage would never learn that it stopped firing and would inhibit for ever",
  ]);
});

Deno.test("runRuleTest() marks the alerts an inhibit rule keeps from being notified, in virtual time", () => {
  const r = parseRuleFile(
    "rules/noise.yaml",
    `rules:
  - id: gateway-down
    sensor_type: motion
    threshold: { max: 0.5 }
    priority: critical
  - id: sensor-hot
    sensor_type: temperature
    threshold: { max: 40 }
    priority: high
inhibit:
  - source: { rule_id: gateway-down }
    target: { rule_id: sensor-hot }
    equal: [location]
`,
  );
  assert.deepEqual(r.problems, []);
  const { tests, problems } = parseRuleTestFile(
    "tests.yaml",
    `tests:
  - name: the gateway's hall is quiet while it is down, the other hall is not
    events:
      - { at: 0s, sensor_id: gw-1, sensor_type: motion, location: Hall 7, value: 1 }
      - { at: 10s, sensor_id: t1, location: Hall 7, value: 50 }
      - { at: 10s, sensor_id: t2, location: Hall 8, value: 50 }
      - { at: 20s, sensor_id: gw-1, sensor_type: motion, location: Hall 7, value: 0 }
      - { at: 30s, sensor_id: t3, location: Hall 7, value: 50 }
    expect:
      alerts:
        - { at: 0s, rule: gateway-down, state: firing, inhibited: false }
        - { at: 10s, sensor_id: t1, inhibited: true }
        - { at: 10s, sensor_id: t2, inhibited: false }
        - { at: 20s, rule: gateway-down, state: resolved, inhibited: false }
        - { at: 30s, sensor_id: t3, inhibited: false }
`,
  );
  assert.deepEqual(problems, []);
  const result = runRuleTest("tests.yaml", tests[0]!, r.rules, r.inhibitions);
  assert.equal(result.passed, true, result.diff);
});

Deno.test("Inhibitor keeps no alert of a rule that never sends its resolved notice", () => {
  const { inhibitions } = parseRuleFile("rules/noise.yaml", RULES);
  const inhibitor = new Inhibitor(() => inhibitions, (ruleId) => ruleId !== "door-open");
  for (let i = 0; i < 1_000; i++) {
    inhibitor.observe(
      alert({ alert_id: `door-${i}`, rule_id: "door-open", priority: "critical", state: "firing" }),
    );
  }
  assert.equal(inhibitor.firing, 0);
  inhibitor.observe(alert({ alert_id: "gw", rule_id: "gateway-down", location: "L7", state: "firing" }));
  assert.equal(inhibitor.firing, 1);
});

Deno.test("Inhibitor keeps at most its cap of firing alerts: the oldest source goes, its targets are notified", () => {
  const { inhibitions } = parseRuleFile("rules/noise.yaml", RULES);
  const inhibitor = new Inhibitor(() => inhibitions, () => true, 100);
  const gateway = (i: number) =>
    alert({
      alert_id: `gw-${i}`,
      rule_id: "gateway-down",
      sensor_id: `gw-${i}`,
      location: `L${i}`,
      state: "firing",
    });
  for (let i = 0; i < 150; i++) inhibitor.observe(gateway(i));
  assert.equal(inhibitor.firing, 100);
  assert.equal(inhibitor.dropped, 50);
  const target = (loc: string) =>
    alert({ rule_id: "hot", sensor_type: "temperature", sensor_id: "temp-1", location: loc });
  assert.equal(inhibitor.inhibits(target("L7")), false, "L7's source was forgotten");
  assert.equal(inhibitor.inhibits(target("L149")), true);
});

Deno.test("Inhibitor keeps at most its cap of characters: alerts with huge labels push the oldest out", () => {
  const { inhibitions } = parseRuleFile("rules/noise.yaml", RULES);
  const inhibitor = new Inhibitor(() => inhibitions, () => true, 1_000_000, 1_000_000);
  const big = "x".repeat(100_000);
  for (let i = 0; i < 50; i++) {
    inhibitor.observe(
      alert({ alert_id: `big-${i}`, rule_id: "gateway-down", labels: { team: big }, state: "firing" }),
    );
  }
  assert.equal(inhibitor.firing, 9, "nine of 100,000 characters and more fit in 1,000,000");
  assert.equal(inhibitor.dropped, 41);
  // A resolved notice gives its characters back.
  for (let i = 41; i < 50; i++) {
    inhibitor.observe(
      alert({ alert_id: `big-${i}`, rule_id: "gateway-down", labels: { team: big }, state: "resolved" }),
    );
  }
  assert.equal(inhibitor.firing, 0);
  inhibitor.observe(
    alert({ alert_id: "big-again", rule_id: "gateway-down", labels: { team: big }, state: "firing" }),
  );
  assert.equal(inhibitor.dropped, 41);
});

Deno.test("Inhibitor forgets the firing alerts that resolve, whatever their number of groups", () => {
  const { inhibitions } = parseRuleFile("rules/noise.yaml", RULES);
  const inhibitor = new Inhibitor(() => inhibitions);
  const flood = (state: "firing" | "resolved") =>
    Array.from(
      { length: 20_000 },
      (_, i) =>
        alert({
          alert_id: `gw-${i}`,
          rule_id: "gateway-down",
          sensor_id: `gw-${i}`,
          location: `L${i}`,
          state,
        }),
    );
  for (const a of flood("firing")) inhibitor.observe(a);
  assert.equal(inhibitor.firing, 20_000);
  const target = alert({ rule_id: "hot", sensor_type: "temperature", sensor_id: "temp-1", location: "L7" });
  assert.equal(inhibitor.inhibits(target), true);
  for (const a of flood("resolved")) inhibitor.observe(a);
  assert.equal(inhibitor.firing, 0);
  assert.equal(inhibitor.inhibits(target), false);
});

Deno.test("Inhibitor counts by rule at most MAX_COUNTED_RULES rule ids, of at most 256 characters: a flood of invented rule ids cannot grow it", () => {
  // Anyone who can write to the alerts topic chooses `rule_id`: each target alert inhibited under a
  // new (or huge) one was a new entry, kept for ever and a new series of
  // sensor_notifications_inhibited_total on every scrape.
  const { inhibitions } = parseRuleFile("rules/noise.yaml", RULES);
  const inhibitor = new Inhibitor(() => inhibitions);
  inhibitor.observe(alert({ alert_id: "gw", rule_id: "gateway-down", location: "L7", state: "firing" }));
  const target = (rule_id: string, i: number) =>
    alert({
      alert_id: `t-${i}`,
      rule_id,
      sensor_type: "temperature",
      sensor_id: "temp-1",
      location: "L7",
    });
  assert.equal(inhibitor.inhibits(target("hot", 0)), true);
  const huge = "r".repeat(100_000);
  for (let i = 1; i <= 5_000; i++) assert.equal(inhibitor.inhibits(target(`invented-${i}`, i)), true);
  for (let i = 0; i < 10; i++) assert.equal(inhibitor.inhibits(target(`${huge}${i}`, 10_000 + i)), true);
  const counts = inhibitor.counts();
  assert.ok(counts.size <= MAX_COUNTED_RULES + 1, `${counts.size} rules counted`);
  assert.ok([...counts.keys()].every((rule) => rule.length <= 256));
  // Nothing goes uncounted: what has no entry of its own is under OTHER_RULES.
  assert.equal([...counts.values()].reduce((a, b) => a + b, 0), 5_011);
  assert.equal(counts.get("hot"), 1, "a rule met first keeps its own count");
  assert.equal(counts.get(OTHER_RULES), 5_011 - MAX_COUNTED_RULES);
});
