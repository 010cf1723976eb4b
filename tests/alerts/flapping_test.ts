import assert from "node:assert/strict";
import { emptyOutput } from "../../src/rules/engine.ts";
import { engine, ev, T0 } from "../helpers/engine.ts";
import { assertRuleTests } from "./_rule_test.ts";

const RULES = `rules:
  - id: hot
    sensor_type: temperature
    threshold: { max: 30 }
    priority: high
    flapping: { window: 10m, max_transitions: 4 }
`;

Deno.test("flapping: past max_transitions one flapping notice, then one notice of the state once stable", () => {
  assertRuleTests(
    RULES,
    `tests:
  - name: alternating every 30s for 5 minutes, then back to normal
    events:
      - { at: 0s, every: 1m, until: 5m, value: 35 }
      - { at: 30s, every: 1m, until: 5m, value: 20 }
      - { at: 5m, every: 1m, until: 20m, value: 20 }
    expect:
      alerts:
        - { at: 0s, state: firing }
        - { at: 30s, state: resolved }
        - { at: 1m, state: firing }
        - { at: 1m30s, state: resolved }
        - { at: 2m, state: firing, flapping: true }
        - { at: 14m30s, state: resolved, flapping: false }
`,
  );
});

Deno.test("flapping: a sensor that settles while firing gets one firing notice once stable, then resolves as usual", () => {
  assertRuleTests(
    RULES,
    `tests:
  - name: alternating, then stuck high, then normal
    events:
      - { at: 0s, every: 1m, until: 3m, value: 35 }
      - { at: 30s, every: 1m, until: 3m, value: 20 }
      - { at: 3m, every: 1m, until: 20m, value: 35 }
      - { at: 20m, value: 20 }
    expect:
      alerts:
        - { at: 0s, state: firing }
        - { at: 30s, state: resolved }
        - { at: 1m, state: firing }
        - { at: 1m30s, state: resolved }
        - { at: 2m, state: firing, flapping: true }
        - { at: 13m, state: firing, flapping: false }
        - { at: 20m, state: resolved }
`,
  );
});

Deno.test("flapping: the stable notice comes from the clock when the sensor goes quiet", () => {
  assertRuleTests(
    RULES,
    `tests:
  - name: five transitions, then nothing but ticks
    events:
      - { at: 0s, value: 35 }
      - { at: 10s, value: 20 }
      - { at: 20s, value: 35 }
      - { at: 30s, value: 20 }
      - { at: 40s, value: 35 }
      - { at: 50s, value: 20 }
    ticks: [5m, 11m]
    expect:
      alerts:
        - { at: 0s, state: firing }
        - { at: 10s, state: resolved }
        - { at: 20s, state: firing }
        - { at: 30s, state: resolved }
        - { at: 40s, state: firing, flapping: true }
        - { at: 10m50s, state: resolved, flapping: false }
`,
  );
});

Deno.test("flapping: transitions spread wider than the window never flap", () => {
  assertRuleTests(
    RULES,
    `tests:
  - name: one transition every 3 minutes
    events:
      - { at: 0s, every: 6m, until: 36m, value: 35 }
      - { at: 3m, every: 6m, until: 36m, value: 20 }
    expect:
      alerts:
        - { at: 0s, state: firing }
        - { at: 3m, state: resolved }
        - { at: 6m, state: firing }
        - { at: 9m, state: resolved }
        - { at: 12m, state: firing }
        - { at: 15m, state: resolved }
        - { at: 18m, state: firing }
        - { at: 21m, state: resolved }
        - { at: 24m, state: firing }
        - { at: 27m, state: resolved }
        - { at: 30m, state: firing }
        - { at: 33m, state: resolved }
`,
  );
});

/** An engine under RULES fed `values` of `sensor`, one every 30 s from T0, then ticked an hour on. */
function fed(sensor: string, values: number[]) {
  const e = engine(RULES);
  const out = emptyOutput();
  values.forEach((v, i) => e.onEvent(ev(sensor, v), T0 + i * 30_000, out));
  e.tick(out, 0, T0 + 60 * 60_000);
  return { e, out };
}

Deno.test("flapping: the stable notice closes or continues the alert id of the flapping notice, so consumers tracking ids agree", () => {
  // Flapping at the fifth change (a firing), then two more changes, then it settles resolved.
  const { out } = fed("door-1", [35, 20, 35, 20, 35, 20, 35, 20]);
  const [flapNotice, stable] = out.alerts.slice(4);
  assert.equal(flapNotice!.flapping, true);
  assert.deepEqual([stable!.state, stable!.flapping, stable!.alert_id], [
    "resolved",
    false,
    flapNotice!.alert_id,
  ]);

  // The same, settling while firing: the open episode goes on under the flapping notice's id.
  const { e: e2, out: out2 } = fed("door-2", [35, 20, 35, 20, 20, 35, 20, 35]);
  const notices = out2.alerts.slice(4);
  assert.deepEqual(notices.map((a) => [a.state, a.flapping]), [["firing", true], ["firing", false]]);
  assert.equal(notices[1]!.alert_id, notices[0]!.alert_id);
  e2.onEvent(ev("door-2", 20), T0 + 61 * 60_000, out2);
  assert.deepEqual(out2.alerts.slice(6).map((a) => [a.state, a.alert_id]), [[
    "resolved",
    notices[0]!.alert_id,
  ]]);
});
