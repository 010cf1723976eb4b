/** Grouping as Alertmanager does it, in virtual time: the Dispatcher reads a manual clock. */
import assert from "node:assert/strict";
import { batchId } from "../../src/notifiers/grouping.ts";
import { Dispatcher, type NotifierInstance } from "../../src/notifiers/dispatcher.ts";
import type { Notification } from "../../src/notifiers/plugin.ts";
import { DeliveryError } from "../../src/notifiers/plugin.ts";
import type { OutRecord } from "../../src/transport/output.ts";
import { alert, captureLogger, notifierSet } from "../helpers/notifiers.ts";
import { ManualClock } from "../helpers/clock.ts";

const S = 1000;

function setup(route: Record<string, unknown>, behave: () => Promise<void> = () => Promise.resolve()) {
  const calls: { at: number; ids: string[]; id: string }[] = [];
  const clock = new ManualClock();
  const inst: NotifierInstance = {
    name: "g",
    plugin: "scripted",
    notifier: {
      notify: (batch: Notification[], ctx) => {
        calls.push({ at: clock.now(), ids: batch.map((n) => n.id), id: ctx.id });
        return behave();
      },
    },
  };
  const set = notifierSet([inst], {
    file: { notifiers: [{ name: "g", plugin: "x" }], routes: [{ receivers: ["g"], ...route }] },
    policy: { maxAttempts: 1 },
  });
  const dlq: OutRecord[] = [];
  const d = new Dispatcher({
    notifiers: () => set,
    logger: captureLogger().logger,
    deadLetter: (r) => Promise.resolve(void dlq.push(...r)),
    dlqTopic: "dlq",
    alertsTopic: "alerts",
    clock,
  });
  return { d, clock, calls, dlq };
}

const route = { group_by: ["rule_id"], group_wait: "5s", group_interval: "15s" };

Deno.test("an alert that arrives during group_wait joins the group's first notification", async () => {
  const { d, clock, calls } = setup(route);
  d.submit([alert({ alert_id: "g-1" }), alert({ alert_id: "g-2" })]);
  await clock.at(3 * S);
  d.submit([alert({ alert_id: "g-4" })]);
  await clock.at(5 * S);
  assert.deepEqual(calls, [{
    at: 5 * S,
    ids: ["g-1.firing", "g-2.firing", "g-4.firing"],
    id: calls[0]!.id,
  }]);
  assert.match(calls[0]!.id, /^group\.[0-9a-f]{24}$/);
});

Deno.test("group_interval paces only its own group", async () => {
  const { d, clock, calls } = setup(route);
  d.submit([alert({ alert_id: "a-1", rule_id: "a" })]);
  await clock.at(6 * S);
  d.submit([alert({ alert_id: "a-2", rule_id: "a" })]);
  await clock.at(9 * S);
  d.submit([alert({ alert_id: "b-1", rule_id: "b" })]);
  await clock.at(19 * S);
  assert.deepEqual(calls.map((c) => [c.at, c.ids]), [[5 * S, ["a-1.firing"]], [14 * S, ["b-1.firing"]]]);
  await clock.at(20 * S);
  assert.deepEqual(calls.at(-1), { at: 20 * S, ids: ["a-2.firing"], id: "a-2.firing" });
});

Deno.test("a resolved notice goes out with its group's next notification, not before", async () => {
  const { d, clock, calls } = setup(route);
  const firing = alert({ alert_id: "r-1" });
  d.submit([firing]);
  await clock.at(9 * S);
  d.submit([{ ...firing, state: "resolved" }]);
  await clock.at(11 * S);
  d.submit([alert({ alert_id: "r-5" })]);
  await clock.at(19 * S);
  assert.equal(calls.length, 1);
  await clock.at(20 * S);
  assert.deepEqual(calls.map((c) => [c.at, c.ids]), [
    [5 * S, ["r-1.firing"]],
    [20 * S, ["r-1.resolved", "r-5.firing"]],
  ]);
});

Deno.test("repeat_interval re-sends a group's firing alerts while it has nothing new, until they resolve", async () => {
  const { d, clock, calls } = setup({ ...route, group_interval: "10s", repeat_interval: "30s" });
  const a = alert({ alert_id: "p-1" });
  d.submit([a]);
  await clock.at(34 * S);
  assert.equal(calls.length, 1);
  await clock.at(35 * S);
  assert.deepEqual(calls.map((c) => [c.at, c.ids]), [[5 * S, ["p-1.firing"]], [35 * S, ["p-1.firing"]]]);
  assert.equal(calls[1]!.id, "p-1.firing.repeat-1", "a repeat has a delivery id of its own");
  d.submit([{ ...a, state: "resolved" }]);
  await clock.at(200 * S);
  assert.deepEqual(calls.map((c) => c.ids), [["p-1.firing"], ["p-1.firing"], ["p-1.resolved"]]);
  assert.equal(d.groups, 0, "the group ends once nothing is firing");
  assert.equal(clock.timers, 0, "and leaves no timer behind");
});

Deno.test("without repeat_interval a group that had nothing new for a whole interval ends, timers and all", async () => {
  const { d, clock } = setup(route);
  for (let i = 0; i < 20; i++) d.submit([alert({ rule_id: `rule-${i}` })]);
  assert.equal(d.groups, 20);
  await clock.at(5 * S + 15 * S);
  assert.equal(d.groups, 0);
  assert.equal(clock.timers, 0);
});

Deno.test("one group's interval does not shorten another's", async () => {
  const { d, clock, calls } = setup({ group_by: ["rule_id"], group_wait: "1s", group_interval: "10m" });
  d.submit([alert({ alert_id: "long-1", rule_id: "long" })]);
  await clock.at(120 * S);
  d.submit([alert({ alert_id: "long-2", rule_id: "long" })]);
  for (let i = 0; i < 5; i++) {
    d.submit([alert({ rule_id: `other-${i}` })]);
    await clock.at(120 * S + (i + 1) * 61 * S);
  }
  assert.deepEqual(calls.filter((c) => c.ids[0]!.startsWith("long")).map((c) => c.at), [1 * S]);
  await clock.at(601 * S);
  assert.deepEqual(calls.filter((c) => c.ids[0]!.startsWith("long")).map((c) => c.at), [1 * S, 601 * S]);
});

Deno.test("a grouped alert is done only once its group's notification is delivered or dead-lettered", async () => {
  const ok = setup(route);
  let delivered = false;
  ok.d.submit([alert()]).done.then(() => delivered = true);
  await ok.clock.at(4 * S);
  assert.equal(delivered, false);
  await ok.clock.at(5 * S);
  assert.equal(delivered, true);

  const bad = setup(
    route,
    () => Promise.reject(new DeliveryError("Receiver answered 400", { reason: "client", retryable: false })),
  );
  let deadLettered = false;
  bad.d.submit([alert(), alert()]).done.then(() => deadLettered = true);
  await bad.clock.at(5 * S);
  assert.equal(deadLettered, true);
  assert.equal(bad.dlq.length, 2, "each alert of the group has its DLQ record");
  assert.equal(JSON.parse(bad.dlq[0]!.value!).delivery_id, bad.calls[0]!.id);
});

Deno.test("close() ends every group: its alerts are neither sent nor done", async () => {
  const { d, clock, calls } = setup(route);
  const run = d.submit([alert()]).done.then(() => "done", () => "given up");
  d.close();
  assert.equal(await run, "given up");
  await clock.at(60 * S);
  assert.equal(calls.length, 0);
  assert.equal(clock.timers, 0);
});

Deno.test("an alert submitted after close() is given up at once and starts no group", async () => {
  const { d, clock } = setup(route);
  d.close();
  const run = d.submit([alert()]).done.then(() => "done", () => "given up");
  assert.equal(await run, "given up");
  assert.equal(d.groups, 0);
  assert.equal(clock.timers, 0);
});

Deno.test("batchId() of a group is order-free and the id receivers already saw for it", () => {
  const n = (id: string): Notification => ({ id, alert: alert() });
  assert.equal(batchId([n("n-2"), n("n-1")]), "group.ffe8bdb7f5ac37a9447d5e27");
  assert.equal(batchId([n("n-1"), n("n-2")]), "group.ffe8bdb7f5ac37a9447d5e27");
  assert.equal(batchId([n("n-1")]), "n-1");
});
