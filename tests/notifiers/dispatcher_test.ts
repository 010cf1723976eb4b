import assert from "node:assert/strict";
import { Dispatcher, type NotifierInstance, type NotifierSet } from "../../src/notifiers/dispatcher.ts";
import type { Notification } from "../../src/notifiers/plugin.ts";
import { DeliveryError } from "../../src/notifiers/plugin.ts";
import type { OutRecord } from "../../src/transport/output.ts";
import { alert, captureLogger, notifierSet } from "../helpers/notifiers.ts";

/** A notifier whose behaviour per call is scripted; it keeps every batch it was given. */
function scripted(name: string, behave: (call: number, batch: Notification[]) => Promise<void>) {
  const calls: Notification[][] = [];
  const inst: NotifierInstance = {
    name,
    plugin: "scripted",
    notifier: { notify: (batch) => behave(calls.push(batch), batch) },
  };
  return { inst, calls };
}

function dispatcher(set: NotifierSet, stopGraceMs?: number) {
  const dlq: OutRecord[] = [];
  const { logger, lines } = captureLogger();
  const d = new Dispatcher({
    notifiers: () => set,
    logger,
    deadLetter: (r) => Promise.resolve(void dlq.push(...r)),
    dlqTopic: "dlq",
    alertsTopic: "alerts",
    ...(stopGraceMs === undefined ? {} : { stopGraceMs }),
  });
  return { d, dlq, lines };
}

Deno.test("Dispatcher retries a plugin that throws, then delivers", async () => {
  const { inst, calls } = scripted(
    "flaky",
    (n) => n < 3 ? Promise.reject(new Error("boom")) : Promise.resolve(),
  );
  const { d, dlq } = dispatcher(notifierSet([inst]));
  await d.deliver([alert()]);
  assert.equal(calls.length, 3);
  assert.equal(dlq.length, 0);
  assert.deepEqual({ ...d.counters }, { delivered: 1, failed: 2, retried: 2, dead_lettered: 0 });
});

Deno.test("Dispatcher isolates a plugin that hangs: timed out, retried, then dead-lettered with its history", async () => {
  const { inst, calls } = scripted("stuck", () => new Promise(() => {}));
  const { d, dlq } = dispatcher(notifierSet([inst], { policy: { timeoutMs: 50, maxAttempts: 3 } }));
  const a = alert();
  await d.deliver([a]);
  assert.equal(calls.length, 3);
  assert.equal(dlq.length, 1);
  const rec = JSON.parse(dlq[0]!.value!);
  assert.equal(rec.stage, "notify");
  assert.equal(rec.notifier, "stuck");
  assert.equal(rec.notification_id, `${a.alert_id}.firing`);
  assert.equal(rec.retry_count, 2);
  assert.deepEqual(rec.attempts.map((x: { reason: string }) => x.reason), ["timeout", "timeout", "timeout"]);
  assert.equal(JSON.parse(rec.original_value).alert_id, a.alert_id);
  assert.equal(d.stats().stuck!.dead_lettered, 1);
});

Deno.test("Dispatcher does not retry a client error", async () => {
  const { inst, calls } = scripted(
    "gone",
    () =>
      Promise.reject(
        new DeliveryError("Receiver answered 410", { reason: "client", retryable: false, status: 410 }),
      ),
  );
  const { d, dlq } = dispatcher(notifierSet([inst]));
  await d.deliver([alert()]);
  assert.equal(calls.length, 1);
  assert.equal(JSON.parse(dlq[0]!.value!).attempts[0].status, 410);
});

Deno.test("Dispatcher waits Retry-After before retrying a 429", async () => {
  const times: number[] = [];
  const { inst } = scripted("limited", (n) => {
    times.push(Date.now());
    return n === 1
      ? Promise.reject(
        new DeliveryError("429", { reason: "rate-limited", retryable: true, retryAfterMs: 150 }),
      )
      : Promise.resolve();
  });
  const { d } = dispatcher(notifierSet([inst]));
  await d.deliver([alert()]);
  assert.ok(times[1]! - times[0]! >= 140, `waited ${times[1]! - times[0]!} ms`);
});

Deno.test("the circuit breaker opens after N failures, refuses tries while open, and closes on a good probe", async () => {
  let healthy = false;
  const down = () => new DeliveryError("Receiver answered 503", { reason: "server", retryable: true });
  const { inst, calls } = scripted("cb", () => healthy ? Promise.resolve() : Promise.reject(down()));
  const set = notifierSet([inst], {
    policy: { maxAttempts: 100, baseDelayMs: 1, maxDelayMs: 5, giveUpAfterMs: 5000 },
    breaker: { failureThreshold: 3, cooldownMs: 300 },
  });
  const { d, dlq } = dispatcher(set);
  const run = d.deliver([alert()]);
  await new Promise((r) => setTimeout(r, 150));
  assert.equal(calls.length, 3, "no tries while open");
  assert.equal(d.stats().cb!.breaker.state, "open");
  healthy = true;
  await run;
  assert.equal(calls.length, 4, "one probe after the cooldown");
  assert.equal(d.stats().cb!.breaker.state, "closed");
  assert.equal(d.stats().cb!.breaker.opened, 1);
  assert.equal(dlq.length, 0);
});

Deno.test("a notification refused by an open breaker past its budget is dead-lettered", async () => {
  const { inst } = scripted(
    "cb",
    () => Promise.reject(new DeliveryError("Receiver answered 503", { reason: "server", retryable: true })),
  );
  const set = notifierSet([inst], {
    policy: { maxAttempts: 100, baseDelayMs: 1, maxDelayMs: 5, giveUpAfterMs: 200 },
    breaker: { failureThreshold: 2, cooldownMs: 10_000 },
  });
  const { d, dlq } = dispatcher(set);
  await d.deliver([alert()]);
  assert.equal(dlq.length, 1);
  assert.match(JSON.parse(dlq[0]!.value!).error, /Circuit breaker open/);
});

Deno.test("the in-flight window bounds concurrent notifications per notifier", async () => {
  let now = 0;
  let peak = 0;
  const { inst, calls } = scripted("slow", async () => {
    peak = Math.max(peak, ++now);
    await new Promise((r) => setTimeout(r, 20));
    now--;
  });
  const { d } = dispatcher(notifierSet([inst], { maxInFlight: 3 }));
  await d.deliver(Array.from({ length: 10 }, () => alert()));
  assert.equal(calls.length, 10);
  assert.equal(peak, 3);
});

Deno.test("routes: first match wins, continue goes on, unmatched alerts go to the default receivers", async () => {
  const a = scripted("a", () => Promise.resolve());
  const b = scripted("b", () => Promise.resolve());
  const c = scripted("c", () => Promise.resolve());
  const set = notifierSet([a.inst, b.inst, c.inst], {
    file: {
      notifiers: [{ name: "a", plugin: "x" }, { name: "b", plugin: "x" }, { name: "c", plugin: "x" }],
      routes: [
        { match: { priority: ["critical"], labels: { team: "safety" } }, receivers: ["a"], continue: true },
        { match: { sensor_type: "co2" }, receivers: ["b", "a"] },
        { match: { rule_id: "humidity" }, receivers: ["b"] },
      ],
      default_receivers: ["c"],
    },
  });
  const { d } = dispatcher(set);
  await d.deliver([
    alert({ alert_id: "crit-co2" }),
    alert({ alert_id: "low-co2", priority: "low" }),
    alert({ alert_id: "temp", sensor_type: "temperature", priority: "low", rule_id: "t" }),
  ]);
  const ids = (x: { calls: Notification[][] }) => x.calls.flat().map((n) => n.alert.alert_id).sort();
  assert.deepEqual(ids(a), ["crit-co2", "low-co2"], "a receiver gets an alert once");
  assert.deepEqual(ids(b), ["crit-co2", "low-co2"]);
  assert.deepEqual(ids(c), ["temp"]);
});

Deno.test("grouping batches the alerts of one route and group key into one notification", async () => {
  const g = scripted("g", () => Promise.resolve());
  const set = notifierSet([g.inst], {
    file: {
      notifiers: [{ name: "g", plugin: "x" }],
      routes: [{ receivers: ["g"], group_by: ["rule_id"], group_wait: "50ms", group_interval: "1s" }],
    },
  });
  const { d } = dispatcher(set);
  await d.deliver([alert(), alert(), alert({ rule_id: "other" })]);
  assert.deepEqual(g.calls.map((b) => b.length).sort(), [1, 2]);
});

Deno.test("an acknowledgement update is not notified", async () => {
  const a = scripted("a", () => Promise.resolve());
  const { d } = dispatcher(notifierSet([a.inst]));
  await d.deliver([alert({ acknowledged: true, ack_update: true } as never)]);
  assert.equal(a.calls.length, 0);
});

Deno.test("close() gives up retries in progress without dead-lettering", async () => {
  const { inst } = scripted("down", () => Promise.reject(new Error("down")));
  const { d, dlq } = dispatcher(notifierSet([inst], { policy: { baseDelayMs: 10_000, maxDelayMs: 10_000 } }));
  const run = d.deliver([alert()]).then(() => "resolved", () => "rejected");
  await new Promise((r) => setTimeout(r, 50));
  d.close();
  assert.equal(await run, "rejected");
  assert.equal(dlq.length, 0);
});

Deno.test("close() lets a try in flight finish: answered, it is delivered, and close resolves after it", async () => {
  let answer!: () => void;
  const { inst } = scripted("slow", () => new Promise<void>((r) => answer = r));
  const { d, dlq } = dispatcher(notifierSet([inst]));
  const run = d.deliver([alert()]).then(() => "resolved", () => "rejected");
  await new Promise((r) => setTimeout(r, 20));
  let closed = false;
  const closing = d.close().then(() => closed = true);
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(closed, false, "close waits for the try in flight");
  answer();
  await closing;
  assert.equal(await run, "resolved");
  assert.equal(d.counters.delivered, 1);
  assert.equal(dlq.length, 0);
});

Deno.test("close() aborts a try still in flight after the stop grace: neither delivered nor dead-lettered", async () => {
  let aborted = false;
  const hung: NotifierInstance = {
    name: "hung",
    plugin: "scripted",
    notifier: {
      notify: (_batch, ctx) =>
        new Promise<void>((_, reject) => {
          ctx.signal.addEventListener("abort", () => {
            aborted = true;
            reject(ctx.signal.reason);
          }, { once: true });
        }),
    },
  };
  const { d, dlq } = dispatcher(notifierSet([hung], { policy: { timeoutMs: 60_000 } }), 50);
  const run = d.deliver([alert()]).then(() => "resolved", () => "rejected");
  await new Promise((r) => setTimeout(r, 20));
  await d.close();
  assert.equal(aborted, true, "the plugin's signal aborted at the grace's end");
  assert.equal(await run, "rejected");
  assert.equal(dlq.length, 0);
});
