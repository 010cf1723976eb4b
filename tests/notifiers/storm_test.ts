/** The storm guard in virtual time: a rule's notifications capped per interval, the rest summed up in one. */
import assert from "node:assert/strict";
import type { SensorAlert } from "../../src/contract/schemas.ts";
import { Dispatcher, type NotifierInstance } from "../../src/notifiers/dispatcher.ts";
import type { Notification } from "../../src/notifiers/plugin.ts";
import { alert, captureLogger, notifierSet } from "../helpers/notifiers.ts";
import { ManualClock, settle } from "../helpers/clock.ts";

const S = 1000;

function setup() {
  const sent: Notification[] = [];
  const clock = new ManualClock();
  const inst: NotifierInstance = {
    name: "n",
    plugin: "scripted",
    notifier: { notify: (batch: Notification[]) => Promise.resolve(void sent.push(...batch)) },
  };
  const d = new Dispatcher({
    notifiers: () => notifierSet([inst]),
    logger: captureLogger().logger,
    deadLetter: () => Promise.resolve(),
    dlqTopic: "dlq",
    alertsTopic: "alerts",
    clock,
    maxNotifications: (rule) => rule === "storm" ? { count: 20, perMs: 60 * S } : null,
  });
  return { d, clock, sent };
}

const stormAlert = (i: number, sensor: string): SensorAlert =>
  alert({ alert_id: `s-${i}`, rule_id: "storm", sensor_id: sensor, priority: "high" });

Deno.test("max_notifications sends the cap, then one summary with counts by sensor for the rest", async () => {
  const { d, clock, sent } = setup();
  const alerts = Array.from({ length: 3432 }, (_, i) => stormAlert(i, i % 3 === 0 ? "t-1" : "t-2"));
  let done = false;
  d.submit(alerts).done.then(() => done = true);
  await settle();
  assert.equal(sent.length, 20);
  assert.equal(done, false, "the held alerts are done only once their summary is delivered");
  await clock.at(60 * S);
  assert.equal(sent.length, 21);
  const summary = sent[20]!;
  assert.match(summary.alert.message, /and 3,412 more like it/);
  assert.deepEqual(summary.alert.storm, {
    held: 3412,
    by_sensor: { "t-1": 1144 - 7, "t-2": 2288 - 13 },
    per: "60s",
  });
  assert.equal(summary.alert.rule_id, "storm");
  assert.equal(summary.alert.priority, "high");
  await settle();
  assert.equal(done, true);
});

Deno.test("max_notifications opens a new interval after the last: the next alerts pass again", async () => {
  const { d, clock, sent } = setup();
  d.submit(Array.from({ length: 25 }, (_, i) => stormAlert(i, "t-1")));
  await clock.at(61 * S);
  d.submit(Array.from({ length: 5 }, (_, i) => stormAlert(100 + i, "t-1")));
  await settle();
  assert.deepEqual(sent.map((n) => n.id).slice(20), [
    sent[20]!.id,
    "s-100.firing",
    "s-101.firing",
    "s-102.firing",
    "s-103.firing",
    "s-104.firing",
  ]);
  assert.match(sent[20]!.alert.message, /and 5 more like it/);
});

Deno.test("max_notifications holds back only its own rule's notifications, and no summary when none was held", async () => {
  const { d, clock, sent } = setup();
  d.submit(Array.from({ length: 30 }, (_, i) => alert({ alert_id: `o-${i}`, rule_id: "other" })));
  d.submit(Array.from({ length: 20 }, (_, i) => stormAlert(i, "t-1")));
  await clock.at(120 * S);
  assert.equal(sent.length, 50);
  assert.equal(sent.filter((n) => n.alert.storm !== undefined).length, 0);
});

Deno.test("notificationStatus() shows an alert held by the storm guard until it is notified or resolves", async () => {
  const { d, clock } = setup();
  d.submit(Array.from({ length: 22 }, (_, i) => stormAlert(i, "t-1")));
  await settle();
  assert.equal(d.notificationStatus(stormAlert(0, "t-1")).held_by_storm_guard, null, "the first 20 are sent");
  const held = d.notificationStatus(stormAlert(21, "t-1")).held_by_storm_guard;
  assert.deepEqual(held, { rule_id: "storm", held_at: new Date(0).toISOString(), summarized: false });
  await clock.at(60 * S);
  await settle();
  assert.equal(d.notificationStatus(stormAlert(21, "t-1")).held_by_storm_guard?.summarized, true);
  d.submit([{ ...stormAlert(21, "t-1"), state: "resolved" }]);
  assert.equal(d.notificationStatus(stormAlert(21, "t-1")).held_by_storm_guard, null);
  d.submit([stormAlert(20, "t-1")]);
  assert.equal(
    d.notificationStatus(stormAlert(20, "t-1")).held_by_storm_guard,
    null,
    "notified in a new interval",
  );
});

Deno.test("endStorms() sums up what is held at once and ends later intervals at once", async () => {
  const { d, sent } = setup();
  let done = false;
  d.submit(Array.from({ length: 25 }, (_, i) => stormAlert(i, "t-1"))).done.then(() => done = true);
  await settle();
  assert.equal(sent.length, 20);
  d.endStorms();
  await settle();
  assert.equal(sent.length, 21, "the summary, without waiting for the interval's end");
  assert.match(sent[20]!.alert.message, /and 5 more like it/);
  assert.equal(done, true);
});
