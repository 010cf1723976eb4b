import assert from "node:assert/strict";
import { Dispatcher, type NotifierInstance } from "../../../src/notifiers/dispatcher.ts";
import type { Notification } from "../../../src/notifiers/plugin.ts";
import { FileSilenceLog } from "../../../src/notifiers/silences/file.ts";
import { SilenceGate } from "../../../src/notifiers/silences/gate.ts";
import { Silences } from "../../../src/notifiers/silences/store.ts";
import { waitFor } from "../../helpers/kafka.ts";
import { alert, captureLogger, notifierSet } from "../../helpers/notifiers.ts";

Deno.test("Dispatcher does not notify a silenced alert, and notifies it when the silence is expired while it fires", async () => {
  const dir = await Deno.makeTempDir({ prefix: "silences-dispatcher-" });
  const { logger } = captureLogger();
  const silences = new Silences({ log: new FileSilenceLog(`${dir}/silences.json`), logger });
  await silences.start();
  const sent: Notification[] = [];
  const inst: NotifierInstance = {
    name: "hook",
    plugin: "capture",
    notifier: { notify: (batch) => Promise.resolve(void sent.push(...batch)) },
  };
  const d = new Dispatcher({
    notifiers: () => notifierSet([inst]),
    logger,
    deadLetter: () => Promise.resolve(),
    dlqTopic: "dlq",
    alertsTopic: "alerts",
    silences: new SilenceGate(silences, logger),
  });
  try {
    const s = await silences.create({
      matchers: [{ name: "rule_id", value: "co2-critical", is_regex: false, is_equal: true }],
      ends_at: new Date(Date.now() + 3600_000).toISOString(),
      created_by: "t",
      comment: "c",
    });
    const silenced = alert();
    const other = alert({ rule_id: "temperature-out-of-range" });
    await d.deliver([silenced, other]);
    assert.deepEqual(sent.map((n) => n.alert.alert_id), [other.alert_id]);
    assert.equal(silences.suppressed, 1);

    await silences.expire(s.id);
    await waitFor("the held alert to be delivered", () => sent.length === 2);
    assert.deepEqual(sent.map((n) => n.id), [`${other.alert_id}.firing`, `${silenced.alert_id}.firing`]);
  } finally {
    d.close();
    await silences.close();
  }
});

Deno.test("Dispatcher notifies the resolved notice of an alert notified as firing before its silence began", async () => {
  const dir = await Deno.makeTempDir({ prefix: "silences-dispatcher-" });
  const { logger } = captureLogger();
  const silences = new Silences({ log: new FileSilenceLog(`${dir}/silences.json`), logger });
  await silences.start();
  const sent: Notification[] = [];
  const inst: NotifierInstance = {
    name: "hook",
    plugin: "capture",
    notifier: { notify: (batch) => Promise.resolve(void sent.push(...batch)) },
  };
  const d = new Dispatcher({
    notifiers: () => notifierSet([inst]),
    logger,
    deadLetter: () => Promise.resolve(),
    dlqTopic: "dlq",
    alertsTopic: "alerts",
    silences: new SilenceGate(silences, logger),
  });
  try {
    const before = alert();
    await d.deliver([before]);
    await silences.create({
      matchers: [{ name: "rule_id", value: "co2-critical", is_regex: false, is_equal: true }],
      ends_at: new Date(Date.now() + 3600_000).toISOString(),
      created_by: "t",
      comment: "c",
    });
    const during = alert();
    await d.deliver([{ ...before, repeat: 1 }, during, { ...before, state: "resolved" }]);
    await d.deliver([{ ...during, state: "resolved" }]);
    // The receivers saw `before` fire: they are told it ended. `during` they never saw.
    assert.deepEqual(sent.map((n) => n.id), [`${before.alert_id}.firing`, `${before.alert_id}.resolved`]);
  } finally {
    d.close();
    await silences.close();
  }
});
