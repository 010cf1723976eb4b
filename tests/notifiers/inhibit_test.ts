/** Inhibition in the notifier stage: while a source alert fires, matching targets with equal values are not notified. */
import assert from "node:assert/strict";
import type { CompiledInhibition } from "../../src/rules/inhibit.ts";
import { parseRuleFile } from "../../src/rules/load.ts";
import { alert, captureLogger, capturing, dispatcher } from "../helpers/notifiers.ts";
import { SilenceGate } from "../../src/notifiers/silences/gate.ts";
import { fileSilences, silenceOn } from "../helpers/silences.ts";

const { inhibitions } = parseRuleFile(
  "rules/noise.yaml",
  `inhibit:
  - source: { rule_id: gateway-down }
    target: { rule_id: sensor-silent }
    equal: [location]
`,
);

/** A dispatcher with the inhibit rules `rules` (the gateway's by default), and what it sent. */
function setup(rules: readonly CompiledInhibition[] = inhibitions) {
  const { inst, sent } = capturing("n", "scripted");
  return { d: dispatcher([inst], { inhibitions: () => rules }), sent };
}

const gateway = (state: "firing" | "resolved", location = "Hall 7") =>
  alert({ alert_id: `gw-${location}`, rule_id: "gateway-down", sensor_id: "gw-1", location, state });
const silent = (sensor: string, location: string, state: "firing" | "resolved" = "firing") =>
  alert({ alert_id: `silent-${sensor}`, rule_id: "sensor-silent", sensor_id: sensor, location, state });

Deno.test("a firing gateway alert keeps its location's sensor alerts from being notified, not another location's", async () => {
  const { d, sent } = setup();
  await d.deliver([
    gateway("firing"),
    silent("t1", "Hall 7"),
    silent("t2", "Hall 8"),
    silent("t3", "Hall 7"),
  ]);
  assert.deepEqual(sent.map((n) => n.id), ["gw-Hall 7.firing", "silent-t2.firing"]);
  assert.deepEqual([...d.inhibitedCounts()], [["sensor-silent", 2]]);
});

Deno.test("once the gateway alert resolves, its location's sensor alerts are notified again", async () => {
  const { d, sent } = setup();
  await d.deliver([gateway("firing"), silent("t1", "Hall 7")]);
  await d.deliver([gateway("resolved"), silent("t4", "Hall 7")]);
  assert.deepEqual(sent.map((n) => n.id), ["gw-Hall 7.firing", "gw-Hall 7.resolved", "silent-t4.firing"]);
});

Deno.test("a source known only from the firing view (another partition) inhibits too, and an ack update keeps it firing", async () => {
  const { d, sent } = setup();
  d.observeFiring({ ...gateway("firing"), acknowledged: true, ack_update: true });
  await d.deliver([silent("t1", "Hall 7")]);
  assert.deepEqual(sent, []);
});

Deno.test("a storm guard's summary of a source rule is not a firing source: it would never resolve", async () => {
  const { d, sent } = setup();
  d.observeFiring({
    ...gateway("firing"),
    alert_id: "storm.gateway-down.0",
    storm: { held: 3, by_sensor: {}, per: "60s" },
  });
  await d.deliver([silent("t1", "Hall 7")]);
  assert.deepEqual(sent.map((n) => n.id), ["silent-t1.firing"]);
});

Deno.test("notificationStatus() names the firing source that inhibits an alert, until it resolves, and counts nothing", async () => {
  const { d } = setup();
  await d.deliver([gateway("firing")]);
  const status = () => d.notificationStatus(silent("t1", "Hall 7"));
  assert.deepEqual(status().inhibited_by, {
    alert_id: "gw-Hall 7",
    rule_id: "gateway-down",
    sensor_id: "gw-1",
  });
  assert.equal(d.notificationStatus(silent("t2", "Hall 8")).inhibited_by, null);
  assert.deepEqual([...d.inhibitedCounts()], [], "looking is not a notification held back");
  await d.deliver([gateway("resolved")]);
  assert.equal(status().inhibited_by, null);
});

/** A dispatcher with the inhibit rules of `yaml`, and what it sent. */
function setupWith(yaml: string) {
  const parsed = parseRuleFile("rules/noise.yaml", yaml);
  assert.deepEqual(parsed.problems, []);
  return setup(parsed.inhibitions);
}

Deno.test("two alerts that each match both sides of an inhibit rule do not silence each other (as in Alertmanager)", async () => {
  // "critical suppresses the rest" written with a target that includes critical itself.
  const { d, sent } = setupWith(`inhibit:
  - source: { priority: critical }
    target: { priority: [high, critical] }
    equal: [location]
`);
  const at = (id: string, priority: "high" | "critical") =>
    alert({ alert_id: id, rule_id: id, sensor_id: id, location: "Hall 7", priority });
  await d.deliver([at("fire", "critical"), at("smoke", "critical"), at("warm", "high")]);
  assert.deepEqual(sent.map((n) => n.id), ["fire.firing", "smoke.firing"]);
});

Deno.test("an alert notified as firing before its inhibitor fired is notified when it resolves: receivers are not left with it open", async () => {
  const { d, sent } = setup();
  await d.deliver([silent("t1", "Hall 7")]);
  // Its repeat while the gateway is down is inhibited; receivers still saw it fire.
  await d.deliver([gateway("firing"), { ...silent("t1", "Hall 7"), repeat: 1 }]);
  await d.deliver([silent("t1", "Hall 7", "resolved")]);
  assert.deepEqual(sent.map((n) => n.id), ["silent-t1.firing", "gw-Hall 7.firing", "silent-t1.resolved"]);
});

Deno.test("an alert inhibited when it fired is not notified when it resolves, even after its inhibitor resolved", async () => {
  const { d, sent } = setup();
  await d.deliver([gateway("firing"), silent("t1", "Hall 7")]);
  await d.deliver([gateway("resolved"), silent("t1", "Hall 7", "resolved")]);
  assert.deepEqual(sent.map((n) => n.id), ["gw-Hall 7.firing", "gw-Hall 7.resolved"]);
});

Deno.test("a silenced alert that resolves while inhibited is not notified as firing when its silence ends", async () => {
  const { logger } = captureLogger();
  const { silences } = await fileSilences({ prefix: "silences-inhibit-", logger });
  const { inst, sent } = capturing("n", "scripted");
  const d = dispatcher([inst], {
    logger,
    inhibitions: () => inhibitions,
    silences: new SilenceGate(silences, logger),
  });
  try {
    const s = await silences.create(silenceOn("sensor_id", "t1"));
    await d.deliver([silent("t1", "Hall 7")]);
    await d.deliver([gateway("firing"), silent("t1", "Hall 7", "resolved"), gateway("resolved")]);
    await silences.expire(s.id);
    await d.deliver([]);
    assert.deepEqual(sent.map((n) => n.id), ["gw-Hall 7.firing", "gw-Hall 7.resolved"]);
  } finally {
    d.close();
    await silences.close();
  }
});
