import assert from "node:assert/strict";
import { formatProblem, parseRuleFile } from "../../src/rules/load.ts";

const BASE = `rules:
  - id: hot
    sensor_type: temperature
    threshold: { max: 30 }
    priority: high
`;

function problems(extra: string): string[] {
  return parseRuleFile("rules/noise.yaml", BASE + extra).problems.map(formatProblem);
}

Deno.test("parseRuleFile() compiles flapping, escalate and max_notifications", () => {
  const r = parseRuleFile(
    "rules/noise.yaml",
    BASE + `    flapping: { window: 10m, max_transitions: 6 }
    escalate: [{ after: 15m, priority: critical }]
    max_notifications: { count: 20, per: 1m }
`,
  );
  assert.deepEqual(r.problems, []);
  const rule = r.rules[0]!;
  assert.deepEqual(rule.flapping, { windowMs: 600_000, maxTransitions: 6 });
  assert.deepEqual(rule.escalate, [{ afterMs: 900_000, priority: "critical" }]);
  assert.deepEqual(rule.maxNotifications, { count: 20, perMs: 60_000 });
});

Deno.test("parseRuleFile() rejects an escalation that does not raise the priority, with file and line", () => {
  assert.deepEqual(problems(`    escalate:\n      - { after: 15m, priority: normal }\n`), [
    `rules/noise.yaml:7:33 hot: Field "escalate.0.priority": "normal" does not raise the rule's priority "high"`,
  ]);
});

Deno.test("parseRuleFile() rejects escalation steps out of order, each at its line", () => {
  const found = problems(`    escalate:
      - { after: 30m, priority: critical }
      - { after: 15m, priority: high }
`);
  assert.equal(found.length, 2, found.join("\n"));
  assert.match(
    found[0]!,
    /^rules\/noise\.yaml:8:\d+ hot: Field "escalate\.1\.after": must be later than the step before$/,
  );
  assert.match(
    found[1]!,
    /^rules\/noise\.yaml:8:\d+ hot: Field "escalate\.1\.priority": "high" does not raise the step before.s "critical"$/,
  );
});

Deno.test("parseRuleFile() rejects a zero flapping window and a zero storm interval", () => {
  const found = problems(`    flapping: { window: 0s, max_transitions: 6 }
    max_notifications: { count: 20, per: 0 }
`);
  assert.equal(found.length, 2, found.join("\n"));
  assert.match(
    found[0]!,
    /^rules\/noise\.yaml:6:\d+ hot: Field "flapping\.window": must be greater than zero$/,
  );
  assert.match(
    found[1]!,
    /^rules\/noise\.yaml:7:\d+ hot: Field "max_notifications\.per": must be greater than zero$/,
  );
});

Deno.test("parseRuleFile() rejects an unknown field of max_notifications and a count below one", () => {
  const found = problems(`    max_notifications: { count: 0, every: 1m }\n`);
  assert.ok(found.some((p) => /:6:\d+ hot: .*"max_notifications\.count"/.test(p)), found.join("\n"));
  assert.ok(found.some((p) => /:6:\d+ hot: .*every/.test(p)), found.join("\n"));
});

Deno.test("parseRuleFile() rejects a flapping window and a storm interval longer than a day, with file and line", () => {
  // A longer storm interval overflowed the timer (past ~24.8 days it fires at once: no cap at all);
  // a longer flapping window kept a flapping alert from every notification for as long.
  const found = problems(`    flapping: { window: 365000d, max_transitions: 6 }
    max_notifications: { count: 20, per: 30d }
`);
  assert.equal(found.length, 2, found.join("\n"));
  assert.match(found[0]!, /^rules\/noise\.yaml:6:\d+ hot: Field "flapping\.window": must be at most 1d$/);
  assert.match(
    found[1]!,
    /^rules\/noise\.yaml:7:\d+ hot: Field "max_notifications\.per": must be at most 1d$/,
  );
});

Deno.test("parseRuleFile() accepts a flapping window and a storm interval of one day", () => {
  assert.deepEqual(
    problems(`    flapping: { window: 1d, max_transitions: 6 }
    max_notifications: { count: 20, per: 24h }
`),
    [],
  );
});
