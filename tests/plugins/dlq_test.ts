import assert from "node:assert/strict";
import dlqPlugin from "../../plugins/dlq.ts";
import { Dispatcher, type NotifierInstance } from "../../src/notifiers/dispatcher.ts";
import type { Notification } from "../../src/notifiers/plugin.ts";
import type { OutRecord } from "../../src/transport/output.ts";
import { alert, captureLogger, notifierSet, pluginContext } from "../helpers/notifiers.ts";

/** Alerts route to the webhook only; the dlq notifier is the registry's built-in fallback. */
const ONLY_WEBHOOK = {
  notifiers: [{ name: "ops-webhook", plugin: "webhook" }, { name: "dlq", plugin: "dlq" }],
  routes: [{ receivers: ["ops-webhook"] }],
};

function failing(name: string): NotifierInstance {
  return {
    name,
    plugin: "webhook",
    notifier: { notify: () => Promise.reject(new Error("HTTP 500 from receiver")) },
  };
}

async function dlqInstance(deadLettered: Notification[], fail = false): Promise<NotifierInstance> {
  const { logger } = captureLogger();
  const ctx = pluginContext(logger, "dlq", deadLettered);
  if (fail) ctx.deadLetter = () => Promise.reject(new Error("DLQ topic unavailable"));
  return { name: "dlq", plugin: "dlq", notifier: await dlqPlugin.create(dlqPlugin.options.parse({}), ctx) };
}

Deno.test("the dlq plugin records what it gets through the public PluginContext.deadLetter", async () => {
  const got: Notification[] = [];
  const inst = await dlqInstance(got);
  const n = { id: "a.firing", alert: alert() };
  await inst.notifier.notify([n], { signal: new AbortController().signal, attempt: 1, id: n.id });
  assert.deepEqual(got, [n]);
});

Deno.test("a notification that failed for good reaches the dlq notifier with its failure", async () => {
  const got: Notification[] = [];
  const direct: OutRecord[] = [];
  const { logger } = captureLogger();
  const d = new Dispatcher({
    notifiers: () =>
      notifierSet([failing("ops-webhook")], { policy: { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 2 } }),
    logger,
    deadLetter: (r) => Promise.resolve(void direct.push(...r)),
    dlqTopic: "dlq",
    alertsTopic: "alerts",
  });
  // notifierSet builds the instances; add the dlq one as the registry always does.
  const set = notifierSet([failing("ops-webhook"), await dlqInstance(got)], {
    policy: { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 2 },
    file: ONLY_WEBHOOK,
  });
  const d2 = new Dispatcher({
    notifiers: () => set,
    logger,
    deadLetter: (r) => Promise.resolve(void direct.push(...r)),
    dlqTopic: "dlq",
    alertsTopic: "alerts",
  });
  const a = alert();
  await d2.deliver([a]);
  assert.equal(direct.length, 0, "the dlq notifier took it");
  assert.equal(got.length, 1);
  assert.equal(got[0]!.alert.alert_id, a.alert_id);
  assert.equal(got[0]!.failure?.notifier, "ops-webhook");
  assert.equal(got[0]!.failure?.attempts.length, 2);
  assert.match(got[0]!.failure!.error, /HTTP 500/);
  // Without a dlq notifier the dispatcher writes the record itself.
  await d.deliver([alert()]);
  assert.equal(direct.length, 1);
  assert.equal(JSON.parse(direct[0]!.value!).stage, "notify");
});

Deno.test("when the dlq notifier fails, the record is written directly: never nowhere", async () => {
  const direct: OutRecord[] = [];
  const { logger, lines } = captureLogger();
  const set = notifierSet([failing("ops-webhook"), await dlqInstance([], true)], {
    policy: { maxAttempts: 1, baseDelayMs: 1, maxDelayMs: 2 },
    file: ONLY_WEBHOOK,
  });
  const d = new Dispatcher({
    notifiers: () => set,
    logger,
    deadLetter: (r) => Promise.resolve(void direct.push(...r)),
    dlqTopic: "dlq",
    alertsTopic: "alerts",
  });
  await d.deliver([alert()]);
  assert.equal(direct.length, 1);
  const rec = JSON.parse(direct[0]!.value!);
  assert.equal(rec.notifier, "ops-webhook");
  assert.ok(lines.some((l) => l.includes("The dlq notifier failed")));
});
