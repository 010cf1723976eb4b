import assert from "node:assert/strict";
import { Dispatcher, type NotifierInstance } from "../../../src/notifiers/dispatcher.ts";
import type { Notification } from "../../../src/notifiers/plugin.ts";
import { FileSilenceLog } from "../../../src/notifiers/silences/file.ts";
import { SilenceGate } from "../../../src/notifiers/silences/gate.ts";
import { HeldAlerts, type HeldLog, type HeldRecord } from "../../../src/notifiers/silences/held.ts";
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

Deno.test("Dispatcher's batch with a silenced alert is done only once the held alert's record is durable", async () => {
  const dir = await Deno.makeTempDir({ prefix: "silences-dispatcher-" });
  const { logger } = captureLogger();
  const silences = new Silences({ log: new FileSilenceLog(`${dir}/silences.json`), logger });
  await silences.start();
  const writes: [string, HeldRecord | null][] = [];
  const durable: (() => void)[] = [];
  const log: HeldLog = {
    start: () => Promise.resolve(),
    write: (id, record) => {
      writes.push([id, record]);
      return new Promise((resolve) => durable.push(resolve));
    },
    close: () => Promise.resolve(),
  };
  const gate = new SilenceGate(silences, logger, new HeldAlerts(log, logger));
  await gate.start("all");
  const inst: NotifierInstance = {
    name: "hook",
    plugin: "capture",
    notifier: { notify: () => Promise.resolve() },
  };
  const d = new Dispatcher({
    notifiers: () => notifierSet([inst]),
    logger,
    deadLetter: () => Promise.resolve(),
    dlqTopic: "dlq",
    alertsTopic: "alerts",
    silences: gate,
  });
  try {
    await silences.create({
      matchers: [{ name: "rule_id", value: "co2-critical", is_regex: false, is_equal: true }],
      ends_at: new Date(Date.now() + 3600_000).toISOString(),
      created_by: "t",
      comment: "c",
    });
    const silenced = alert();
    let done = false;
    const submitted = d.submit([silenced], 3).done.then(() => done = true);
    // One turn of the event loop: whatever settles without the write has settled by then.
    await new Promise((resolve) => setTimeout(resolve, 0));
    assert.equal(done, false, "not done before the held record is durable");
    assert.deepEqual(writes.map(([id, r]) => [id, r?.partition, r?.alert.alert_id]), [
      [`held/${silenced.alert_id}`, 3, silenced.alert_id],
    ]);
    for (const f of durable) f();
    await submitted;
    assert.equal(done, true);
  } finally {
    d.close();
    await gate.close();
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

Deno.test("Dispatcher does not release a held repeat of an alert whose resolved notice went out, and forgets its held record", async () => {
  const dir = await Deno.makeTempDir({ prefix: "silences-dispatcher-" });
  const { logger } = captureLogger();
  const silences = new Silences({ log: new FileSilenceLog(`${dir}/silences.json`), logger });
  await silences.start();
  const written: [string, HeldRecord | null][] = [];
  const log: HeldLog = {
    start: () => Promise.resolve(),
    write: (id, record) => Promise.resolve(void written.push([id, record])),
    close: () => Promise.resolve(),
  };
  const gate = new SilenceGate(silences, logger, new HeldAlerts(log, logger));
  await gate.start("all");
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
    silences: gate,
  });
  try {
    const before = alert();
    await d.deliver([before]);
    const created = await silences.create({
      matchers: [{ name: "rule_id", value: "co2-critical", is_regex: false, is_equal: true }],
      ends_at: new Date(Date.now() + 3600_000).toISOString(),
      created_by: "t",
      comment: "c",
    });
    // A repeat is held (a durable record), then the alert resolves: its end is owed, as it was seen firing.
    await d.deliver([{ ...before, repeat: 1 }]);
    assert.equal(gate.held, 1);
    await d.deliver([{ ...before, state: "resolved" }]);
    assert.equal(gate.held, 0, "the repeat is no longer held");
    assert.deepEqual(written.map(([id, r]) => [id, r === null]), [
      [`held/${before.alert_id}`, false],
      [`held/${before.alert_id}`, true],
    ]);
    await silences.expire(created.id);
    await d.deliver([]);
    // Released now, the repeat would tell its receivers the alert fires again after they heard it end.
    assert.deepEqual(sent.map((n) => n.id), [`${before.alert_id}.firing`, `${before.alert_id}.resolved`]);
  } finally {
    d.close();
    await gate.close();
    await silences.close();
  }
});
