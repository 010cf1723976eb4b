/** The storm guard in virtual time: a rule's notifications capped per interval, the rest summed up in one. */
import assert from "node:assert/strict";
import type { DlqRecord, SensorAlert } from "../../src/contract/schemas.ts";
import type { NotifierInstance } from "../../src/notifiers/dispatcher.ts";
import type { Notification } from "../../src/notifiers/plugin.ts";
import { alert, capturing, dispatcher } from "../helpers/notifiers.ts";
import { ManualClock, settle } from "../helpers/clock.ts";
import { DeliveryError } from "../../src/notifiers/errors.ts";
import { MAX_STORM_SENSORS } from "../../src/notifiers/storm.ts";
import type { OutRecord } from "../../src/transport/output.ts";
import { MAX_ORIGINAL_VALUE_BYTES } from "../../src/dlq/record.ts";

const S = 1000;

function setup() {
  const clock = new ManualClock();
  const { inst, sent } = capturing("n", "scripted");
  const d = dispatcher([inst], {
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
    sensors: 2,
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

Deno.test("a summary of 12,000 distinct sensors is dead-lettered whole (replayable): the top sensors by count, then how many more", async () => {
  const clock = new ManualClock();
  const dead: OutRecord[] = [];
  const inst: NotifierInstance = {
    name: "n",
    plugin: "scripted",
    // The summary fails for good, so it is dead-lettered: the record must fit the broker.
    notifier: {
      notify: (batch: Notification[]) =>
        batch.some((n) => n.alert.storm !== undefined)
          ? Promise.reject(new DeliveryError("refused", { reason: "client", retryable: false }))
          : Promise.resolve(),
    },
  };
  const d = dispatcher([inst], {
    deadLetter: (records) => Promise.resolve(void dead.push(...records)),
    clock,
    maxNotifications: (rule) => rule === "storm" ? { count: 1, perMs: 60 * S } : null,
  });
  // Sensor ids as long as decode allows (128 characters), one alert each, and one sensor that storms.
  const long = (i: number) => `sensor-${String(i).padStart(6, "0")}-`.padEnd(128, "x");
  const alerts = Array.from({ length: 12_000 }, (_, i) => stormAlert(i, long(i)));
  for (let i = 0; i < 50; i++) alerts.push(stormAlert(20_000 + i, "hot"));
  d.submit(alerts);
  await clock.at(60 * S);
  await settle();
  assert.equal(dead.length, 1);
  const record = JSON.parse(String(dead[0]!.value)) as DlqRecord;
  // Past 64 K characters the DLQ cuts the original value, and `dlq:replay` cannot read it back.
  assert.equal(record.original_value_truncated, undefined, `${record.original_size} characters`);
  assert.ok(new TextEncoder().encode(record.original_value!).byteLength < MAX_ORIGINAL_VALUE_BYTES);
  const summary = JSON.parse(record.original_value!) as SensorAlert;
  const counted = Object.entries(summary.storm!.by_sensor);
  assert.deepEqual(counted[0], ["hot", 50]);
  assert.ok(counted.length <= 100, `${counted.length} sensors listed`);
  assert.equal(summary.storm!.held, 12_049);
  assert.equal(summary.storm!.sensors, 12_000);
  assert.match(summary.message, /\(hot: 50, .*, and 11,990 more sensors\)/);
});

Deno.test("the storm guard keeps at most twice MAX_STORM_SENSORS sensors' counts and sums up the alerts of the rest", async () => {
  const { d, clock, sent } = setup();
  const held = 2 * MAX_STORM_SENSORS + 5_000;
  // One storming sensor among distinct ones: its count survives the pruning of the rarest.
  const alerts = Array.from({ length: 20 + held - 300 }, (_, i) => stormAlert(i, `t-${i}`));
  for (let i = 0; i < 300; i++) alerts.splice(20 + i * 50, 0, stormAlert(100_000 + i, "hot"));
  d.submit(alerts);
  await clock.at(60 * S);
  await settle();
  const storm = sent.at(-1)!.alert.storm!;
  assert.equal(storm.held, held);
  assert.ok(storm.sensors! <= 2 * MAX_STORM_SENSORS, `${storm.sensors} sensors counted`);
  assert.ok(storm.uncounted! > 0);
  assert.deepEqual(Object.entries(storm.by_sensor)[0], ["hot", 300]);
  assert.equal(storm.sensors! - 1 + storm.uncounted!, held - 300, "each other alert counted once either way");
  assert.match(sent.at(-1)!.alert.message, /and [\d,]+ more alerts of sensors not counted one by one/);
});

Deno.test("max_notifications lets through the resolved notice of an alert notified as firing, so receivers are not left with it open", async () => {
  const { d, clock, sent } = setup();
  const alerts = Array.from({ length: 25 }, (_, i) => stormAlert(i, `t-${i}`));
  d.submit(alerts);
  // All resolve within the same interval: the 20 notified ones are told so; the 5 held are summed up.
  d.submit(alerts.map((a) => ({ ...a, state: "resolved" as const })));
  await settle();
  assert.deepEqual(
    sent.slice(20).map((n) => n.id),
    Array.from({ length: 20 }, (_, i) => `s-${i}.resolved`),
  );
  await clock.at(60 * S);
  assert.equal(sent.length, 41);
  assert.equal(sent[40]!.alert.storm?.held, 10);
});

Deno.test("the storm guard shows at most twice MAX_STORM_SENSORS held alerts one by one, and still sums up every one", async () => {
  const { d, clock, sent } = setup();
  const flood = 20 + 2 * MAX_STORM_SENSORS + 10;
  const alerts = Array.from({ length: flood }, (_, i) => stormAlert(i, `t-${i}`));
  d.submit(alerts);
  await settle();
  assert.equal(
    d.notificationStatus(alerts[20]!).held_by_storm_guard?.rule_id,
    "storm",
    "the first held is shown",
  );
  assert.equal(d.notificationStatus(alerts.at(-1)!).held_by_storm_guard, null, "past the bound, not shown");
  await clock.at(60 * S);
  await settle();
  assert.equal(sent.at(-1)!.alert.storm!.held, flood - 20);
});
