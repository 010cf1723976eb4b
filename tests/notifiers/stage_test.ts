/** The notifier stage's flow: receivers independent of each other, per-receiver backpressure. */
import assert from "node:assert/strict";
import type { SensorAlert } from "../../src/contract/schemas.ts";
import { Dispatcher, type NotifierInstance, type NotifierSet } from "../../src/notifiers/dispatcher.ts";
import { AsyncQueue } from "../../src/transport/queue.ts";
import { localNotifierStage, parseAlerts } from "../../src/notifiers/stage.ts";
import { alert, captureLogger, notifierSet } from "../helpers/notifiers.ts";

/** A receiver that holds every call until released, and one that answers at once. */
function receivers() {
  const held: (() => void)[] = [];
  const got = { slow: [] as string[], healthy: [] as string[] };
  const slow: NotifierInstance = {
    name: "slow",
    plugin: "scripted",
    notifier: {
      notify: (batch) => {
        got.slow.push(...batch.map((n) => n.alert.alert_id));
        return new Promise<void>((r) => held.push(r));
      },
    },
  };
  const healthy: NotifierInstance = {
    name: "healthy",
    plugin: "scripted",
    notifier: {
      notify: (batch) => Promise.resolve(void got.healthy.push(...batch.map((n) => n.alert.alert_id))),
    },
  };
  return { slow, healthy, held, got };
}

function dispatcher(set: NotifierSet): Dispatcher {
  return new Dispatcher({
    notifiers: () => set,
    logger: captureLogger().logger,
    deadLetter: () => Promise.resolve(),
    dlqTopic: "dlq",
    alertsTopic: "alerts",
  });
}

async function until(what: string, cond: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setTimeout(r, 2));
  assert.ok(cond(), what);
}

Deno.test("localNotifierStage() delivers later batches to a healthy receiver while a slow one holds the first", async () => {
  const { slow, healthy, held, got } = receivers();
  const d = dispatcher(notifierSet([slow, healthy], { maxInFlight: 1 }));
  const queue = new AsyncQueue<SensorAlert>();
  const stage = localNotifierStage(queue, d, captureLogger().logger);
  queue.push(alert({ alert_id: "first" }));
  await until("the slow receiver holds the first alert", () => held.length === 1);
  queue.push(alert({ alert_id: "second" }), alert({ alert_id: "third" }));
  await until("the healthy receiver got every alert", () => got.healthy.length === 3);
  assert.deepEqual(got.slow, ["first"], "the slow receiver is still on the first");
  let drained = false;
  queue.drain().then(() => drained = true);
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(drained, false, "a batch is done only once every receiver has it");
  for (let i = 0; i < 3; i++) {
    await until("the next call of the slow receiver", () => held.length > 0);
    held.shift()!();
  }
  await queue.drain();
  assert.deepEqual(got.slow, ["first", "second", "third"]);
  queue.close();
  await stage;
});

Deno.test("with on_full pause, submit() reports only the receiver whose queue is full, and whenRoom() waits until it is half empty", async () => {
  const { slow, healthy, held } = receivers();
  const d = dispatcher(notifierSet([slow, healthy], { maxInFlight: 1, maxQueued: 4, onFull: "pause" }));
  const submit = (alerts: SensorAlert[]) => {
    const s = d.submit(alerts);
    s.done.catch(() => {}); // given up by close() at the end
    return s;
  };
  assert.deepEqual(submit([alert(), alert(), alert()]).full, []);
  await until("the healthy receiver is done", () => d.unfinished("healthy") === 0);
  assert.deepEqual(submit([alert()]).full, ["slow"], "the healthy receiver has room");
  let room = false;
  d.whenRoom(["slow"]).then(() => room = true);
  for (let i = 0; i < 2; i++) {
    await until("a call of the slow receiver", () => held.length > 0);
    held.shift()!();
  }
  await until("two of four done", () => d.unfinished("slow") === 2);
  await new Promise((r) => setTimeout(r, 5));
  assert.equal(room, false, "2 of 4 left is not room yet");
  await until("a call of the slow receiver", () => held.length > 0);
  held.shift()!();
  await until("room once 1 of 4 is left", () => room);
  assert.equal(d.unfinished("slow"), 1);
  d.close();
});

Deno.test("by default a receiver that holds max_queued sends its new notifications to the DLQ, and the others get every alert", async () => {
  const { slow, healthy, held, got } = receivers();
  const dead: string[] = [];
  const d = new Dispatcher({
    notifiers: () => notifierSet([slow, healthy], { maxInFlight: 1, maxQueued: 3 }),
    logger: captureLogger().logger,
    deadLetter: (records) =>
      Promise.resolve(void dead.push(...records.map((r) => JSON.parse(r.value!).error))),
    dlqTopic: "dlq",
    alertsTopic: "alerts",
  });
  // One alert at a time, as batches arrive: the healthy receiver keeps up, the hanging one does not.
  const done: Promise<void>[] = [];
  for (let i = 0; i < 10; i++) {
    const s = d.submit([alert({ alert_id: `a-${i}` })]);
    assert.deepEqual(s.full, [], "nothing to pause");
    done.push(s.done);
    await until(`the healthy receiver got a-${i}`, () => got.healthy.length === i + 1);
  }
  // One in flight and three queued for the hanging one: the other six went to the DLQ at once.
  await until("six dead-lettered", () => dead.length === 6);
  assert.match(dead[0]!, /backlog full: 3 notifications queued \(max_queued 3\)/);
  assert.deepEqual(got.slow, ["a-0"]);
  for (let i = 0; i < 4; i++) {
    await until("the next call of the slow receiver", () => held.length > 0);
    held.shift()!();
  }
  await Promise.all(done);
  assert.deepEqual(got.slow, ["a-0", "a-1", "a-2", "a-3"]);
  d.close();
});

Deno.test("parseAlerts() dead-letters a record that is not an alert, with the notify stage", () => {
  const { alerts, invalid } = parseAlerts([
    { topic: "alerts", partition: 0, offset: "1", key: "k", value: JSON.stringify(alert()) },
    { topic: "alerts", partition: 0, offset: "2", key: "k", value: "{not json" },
  ], "dlq");
  assert.equal(alerts.length, 1);
  assert.equal(invalid.length, 1);
  assert.equal(JSON.parse(invalid[0]!.value!).stage, "notify");
});

Deno.test("parseAlerts() dead-letters an alert whose id cannot go into a header (it held up its receiver's good alerts)", () => {
  // A webhook-id of "x\ny" or "温度" made fetch throw before sending, a failure counted against the
  // receiver: five of them opened its circuit breaker and its good alerts went to the DLQ unsent.
  const bad = ["x\ny", "温度-1", "café€", "a b", "x".repeat(257)];
  const { alerts, invalid } = parseAlerts(
    [...bad, "0123456789abcdef", "ext-42.firing:room/1"].map((id, i) => ({
      topic: "alerts",
      partition: 0,
      offset: String(i),
      key: "k",
      value: JSON.stringify({ ...alert(), alert_id: id }),
    })),
    "dlq",
  );
  assert.deepEqual(alerts.map((a) => a.alert_id), ["0123456789abcdef", "ext-42.firing:room/1"]);
  assert.equal(invalid.length, bad.length);
  for (const r of invalid) assert.match(JSON.parse(r.value!).error, /alert_id/);
});
