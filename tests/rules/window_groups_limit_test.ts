/**
 * A window rule grouped by anything but the sensor (`location`, `metadata.<key>`) keeps one open window
 * per group, and the producer chooses the groups: one sensor sending a new location per event held
 * ~600 bytes per event until the window closed (300,000 events in a 1 h window: +180 MB of heap), and
 * a count window's groups never close at all. At `maxSensors` open groups per rule (the limit that
 * bounds the sensors, so a rule grouped by sensor never meets it first), an event of a new group is
 * refused by that rule (`WindowGroupLimitError`, a rule error: the DLQ) and judged by the others.
 */
import assert from "node:assert/strict";
import { emptyOutput, RuleEngine } from "../../src/rules/engine.ts";
import { WindowGroupLimitError } from "../../src/rules/windows.ts";
import { ev, ruleSet, T0 } from "../helpers/engine.ts";

const LIMIT = 100;

function limited(yaml: string): RuleEngine {
  const e = new RuleEngine({ maxSensors: LIMIT });
  e.setRules(ruleSet(yaml));
  return e;
}

const at = (location: string, value = 20, sensor = "t1") => ({ ...ev(sensor, value), location });

for (
  const [kind, window] of [
    ["tumbling 1h", "{ type: tumbling, size: 1h }"],
    ["sliding 10m by 5m", "{ type: sliding, size: 10m, slide: 5m }"],
    ["count 10", "{ type: count, size: 10 }"],
  ] as const
) {
  Deno.test(`a ${kind} window rule grouped by location keeps at most maxSensors open groups; past it, events of new groups are refused by that rule only`, () => {
    const e = limited(`
rules:
  - id: by-location
    sensor_type: temperature
    window: ${window}
    group_by: location
    threshold: { max: 30 }
    value_of: max
    publish: true
    priority: high
  - id: hot
    sensor_type: temperature
    threshold: { max: 30 }
    priority: high
`);
    const out = emptyOutput();
    for (let i = 0; i < 1_000; i++) e.onEvent(at(`L-${i}`), T0 + i, out);
    assert.equal(out.errors.length, 900, "every event past the limit is an error of that rule");
    assert.ok(out.errors.every((x) => x.rule.rule.id === "by-location"));
    assert.ok(out.errors.every((x) => x.error instanceof WindowGroupLimitError));
    assert.match(
      out.errors[0]!.error.message,
      /windows open for 100 groups, its limit \(MAX_SENSORS_PER_PARTITION=100\)/,
    );
    out.errors.length = 0;
    // A group it keeps still counts its events, and the other rule judges every event.
    e.onEvent(at("L-0", 45), T0 + 1_000, out);
    e.onEvent(at("L-999", 46, "t2"), T0 + 1_001, out);
    assert.deepEqual(out.alerts.map((a) => [a.rule_id, a.value]), [["hot", 45], ["hot", 46]]);
    assert.equal(out.errors.length, 1);
    out.errors.length = 0;
    if (kind.startsWith("count")) {
      // Ten events close L-0's count window: its group is free, and a new one takes its place.
      for (let i = 0; i < 8; i++) e.onEvent(at("L-0"), T0 + 2_000 + i, out);
      assert.equal(out.aggregates.length, 1);
      e.onEvent(at("L-new"), T0 + 3_000, out);
      assert.deepEqual(out.errors, []);
      return;
    }
    e.flush(out);
    assert.equal(new Set(out.aggregates.map((a) => a.group)).size, LIMIT, "the groups it kept, closed");
    assert.ok(out.alerts.some((a) => a.rule_id === "by-location" && a.group === "L-0" && a.value === 45));
    // Closed windows free their groups: the next hour's new locations are taken again.
    out.errors.length = 0;
    e.onEvent(at("L-next-hour"), T0 + 3 * 3_600_000, out);
    assert.deepEqual(out.errors, []);
  });
}

Deno.test("a window rule grouped by sensor meets the sensor limit first: no window group is refused below it", () => {
  const e = limited(`
rules:
  - id: by-sensor
    sensor_type: temperature
    window: { type: tumbling, size: 1h }
    threshold: { max: 30 }
    priority: high
`);
  const out = emptyOutput();
  for (let i = 0; i < LIMIT; i++) e.onEvent(ev(`s-${i}`, 20), T0 + i, out);
  assert.deepEqual(out.errors, []);
});
