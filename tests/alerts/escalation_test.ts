import { assertRuleTests } from "./_rule_test.ts";

const RULES = `rules:
  - id: hot
    sensor_type: temperature
    threshold: { max: 30 }
    priority: normal
    escalate:
      - { after: 15m, priority: high }
      - { after: 30m, priority: critical }
  - id: silent
    sensor_type: temperature
    absent_for: 1m
    priority: high
    escalate: [{ after: 5m, priority: critical }]
`;

Deno.test("escalate raises the priority of an unacknowledged firing alert at each step, in event time", () => {
  assertRuleTests(
    RULES,
    `tests:
  - name: escalates at 15m and 30m, resolves with the last priority
    rules: [hot]
    events:
      - { at: 0s, every: 1m, until: 40m, value: 35 }
      - { at: 40m, value: 20 }
    expect:
      alerts:
        - { at: 0s, state: firing, priority: normal, escalation: 0 }
        - { at: 15m, state: firing, priority: high, escalation: 1 }
        - { at: 30m, state: firing, priority: critical, escalation: 2 }
        - { at: 40m, state: resolved, priority: critical }
`,
  );
});

Deno.test("escalate goes on while the sensor is silent: the clock moves it, not the next event", () => {
  assertRuleTests(
    RULES,
    `tests:
  - name: one event, then only clock ticks
    rules: [hot]
    events:
      - { at: 0s, value: 35 }
    ticks: [10m, 20m]
    expect:
      alerts:
        - { at: 0s, state: firing, priority: normal }
        - { at: 15m, state: firing, priority: high, escalation: 1 }
`,
  );
});

Deno.test("escalate does not raise an acknowledged alert", () => {
  assertRuleTests(
    RULES,
    `tests:
  - name: acknowledged at 5m, never escalated
    rules: [hot]
    events:
      - { at: 0s, every: 1m, until: 40m, value: 35 }
    acks:
      - { at: 5m, rule: hot, group: sensor-1 }
    expect:
      alerts:
        - { at: 0s, state: firing, priority: normal }
`,
  );
});

Deno.test("escalate works on a deadman alert judged by the clock alone", () => {
  assertRuleTests(
    RULES,
    `tests:
  - name: silent for a minute fires, five minutes later critical
    rules: [silent]
    events:
      - { at: 0s, value: 20, sensor_id: t1 }
    ticks: [1m, 2m, 7m, 10m]
    expect:
      alerts:
        - { at: 1m, state: firing, priority: high, sensor_id: t1 }
        - { at: 6m, state: firing, priority: critical, escalation: 1 }
`,
  );
});
