import assert from "node:assert/strict";
import type { Logger } from "../../../src/log.ts";
import { SilenceGate } from "../../../src/notifiers/silences/gate.ts";
import { HeldAlerts, type HeldLog, type HeldRecord } from "../../../src/notifiers/silences/held.ts";
import type { Silences } from "../../../src/notifiers/silences/store.ts";
import { waitFor } from "../../helpers/kafka.ts";
import { alert, captureLogger, capturing, dispatcher } from "../../helpers/notifiers.ts";
import { fileSilences, silenceOn } from "../../helpers/silences.ts";

/** Silences over a file, and a logger for whatever the test builds on them. */
async function setup() {
  const { logger } = captureLogger();
  const { silences } = await fileSilences({ prefix: "silences-dispatcher-", logger });
  return { logger, silences };
}

/** A gate that keeps held alerts in `log`, started. */
async function gateWithHeld(silences: Silences, logger: Logger, log: HeldLog): Promise<SilenceGate> {
  const gate = new SilenceGate(silences, logger, new HeldAlerts(log, logger));
  await gate.start("all");
  return gate;
}

const co2Critical = () => silenceOn("rule_id", "co2-critical");

Deno.test("Dispatcher does not notify a silenced alert, and notifies it when the silence is expired while it fires", async () => {
  const { logger, silences } = await setup();
  const { inst, sent } = capturing("hook", "capture");
  const d = dispatcher([inst], { logger, silences: new SilenceGate(silences, logger) });
  try {
    const s = await silences.create(co2Critical());
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
  const { logger, silences } = await setup();
  const writes: [string, HeldRecord | null][] = [];
  const durable: (() => void)[] = [];
  const gate = await gateWithHeld(silences, logger, {
    start: () => Promise.resolve(),
    write: (id, record) => {
      writes.push([id, record]);
      return new Promise((resolve) => durable.push(resolve));
    },
    close: () => Promise.resolve(),
  });
  const d = dispatcher([capturing("hook", "capture").inst], { logger, silences: gate });
  try {
    await silences.create(co2Critical());
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
  const { logger, silences } = await setup();
  const { inst, sent } = capturing("hook", "capture");
  const d = dispatcher([inst], { logger, silences: new SilenceGate(silences, logger) });
  try {
    const before = alert();
    await d.deliver([before]);
    await silences.create(co2Critical());
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
  const { logger, silences } = await setup();
  const written: [string, HeldRecord | null][] = [];
  const gate = await gateWithHeld(silences, logger, {
    start: () => Promise.resolve(),
    write: (id, record) => Promise.resolve(void written.push([id, record])),
    close: () => Promise.resolve(),
  });
  const { inst, sent } = capturing("hook", "capture");
  const d = dispatcher([inst], { logger, silences: gate });
  try {
    const before = alert();
    await d.deliver([before]);
    const created = await silences.create(co2Critical());
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
