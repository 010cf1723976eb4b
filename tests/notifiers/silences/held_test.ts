import assert from "node:assert/strict";
import { alert, captureLogger } from "../../helpers/notifiers.ts";
import { silenceOn } from "../../helpers/silences.ts";
import { FileSilenceLog } from "../../../src/notifiers/silences/file.ts";
import { SilenceGate } from "../../../src/notifiers/silences/gate.ts";
import { HeldAlerts, type HeldLog, type HeldRecord } from "../../../src/notifiers/silences/held.ts";
import { Silences } from "../../../src/notifiers/silences/store.ts";
import type { SensorAlert } from "../../../src/contract/schemas.ts";

/** One process's silences and gate over the files in `dir`, as embedded mode builds them. */
async function open(dir: string, delivered: () => Promise<void> = () => Promise.resolve()) {
  const { logger } = captureLogger();
  const silences = new Silences({ log: new FileSilenceLog(`${dir}/silences.json`), logger });
  await silences.start();
  const held = new HeldAlerts(new FileSilenceLog<HeldRecord>(`${dir}/silences.held.json`), logger);
  const gate = new SilenceGate(silences, logger, held);
  const released: SensorAlert[] = [];
  gate.attach((a) => {
    released.push(...a);
    return delivered();
  });
  await gate.start("all");
  return {
    silences,
    gate,
    released,
    close: async () => {
      await gate.close();
      await silences.close();
    },
  };
}

const silenceCo2 = silenceOn("sensor_id", "co2-*");

Deno.test("SilenceGate with a held-alerts file releases after a restart what it held before, once, and not what resolved", async () => {
  const dir = await Deno.makeTempDir({ prefix: "silences-held-" });
  const fires = alert({ sensor_id: "co2-001" });
  const resolves = alert({ sensor_id: "co2-002" });
  let p = await open(dir);
  const s = await p.silences.create(silenceCo2);
  assert.equal(p.gate.hold(fires), true);
  assert.equal(p.gate.hold(resolves), true);
  await p.gate.persisted();
  await p.close();

  p = await open(dir);
  try {
    assert.equal(p.gate.held, 2, "read back from the file");
    assert.equal(p.gate.hold({ ...resolves, state: "resolved" }), true);
    await p.gate.persisted();
    assert.equal(p.gate.held, 1);
    await p.silences.expire(s.id);
    assert.deepEqual(p.released.map((a) => a.alert_id), [fires.alert_id]);
    assert.equal(p.silences.released, 1);
    assert.equal(p.gate.held, 0);
  } finally {
    await p.close();
  }

  // Released and forgotten: a later start owes nothing.
  p = await open(dir);
  try {
    assert.equal(p.gate.held, 0);
    assert.deepEqual(p.released, []);
  } finally {
    await p.close();
  }
});

Deno.test("SilenceGate releases at start what a silence that ended while the process was down held", async () => {
  const dir = await Deno.makeTempDir({ prefix: "silences-held-" });
  const fires = alert({ sensor_id: "co2-003" });
  let p = await open(dir);
  const s = await p.silences.create(silenceCo2);
  assert.equal(p.gate.hold(fires), true);
  await p.gate.persisted();
  await p.close();

  // The silence ends while no notifier runs (another process's API expired it).
  const other = new Silences({
    log: new FileSilenceLog(`${dir}/silences.json`),
    logger: captureLogger().logger,
  });
  await other.start();
  await other.expire(s.id);
  await other.close();

  p = await open(dir);
  try {
    assert.deepEqual(p.released.map((a) => a.alert_id), [fires.alert_id]);
  } finally {
    await p.close();
  }
});

Deno.test("SilenceGate's close waits for a release in flight and its tombstone: a restart owes nothing", async () => {
  const dir = await Deno.makeTempDir({ prefix: "silences-held-" });
  const fires = alert({ sensor_id: "co2-004" });
  let answer!: () => void;
  let p = await open(dir, () => new Promise<void>((r) => answer = r));
  const s = await p.silences.create(silenceCo2);
  assert.equal(p.gate.hold(fires), true);
  await p.gate.persisted();
  await p.silences.expire(s.id);
  assert.deepEqual(p.released.map((a) => a.alert_id), [fires.alert_id], "handed to the dispatcher");
  // The stop comes while the receiver has it and has not answered yet.
  let closed = false;
  const closing = p.close().then(() => closed = true);
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(closed, false, "the close waits for the release in flight");
  answer();
  await closing;

  p = await open(dir);
  try {
    assert.equal(p.gate.held, 0, "its tombstone was written before the close");
    assert.deepEqual(p.released, []);
  } finally {
    await p.close();
  }
});

Deno.test("SilenceGate's close does not wait for ever on a write that never lands (the broker gone), nor throw on one that failed", async () => {
  for (const write of [() => new Promise<void>(() => {}), () => Promise.reject(new Error("disk full"))]) {
    const { logger } = captureLogger();
    const silences = new Silences({ log: new FileSilenceLog(`${await Deno.makeTempDir()}/s.json`), logger });
    await silences.start();
    const log: HeldLog = { start: () => Promise.resolve(), write, close: () => Promise.resolve() };
    const gate = new SilenceGate(silences, logger, new HeldAlerts(log, logger));
    gate.attach(() => Promise.resolve());
    await gate.start("all");
    await silences.create(silenceCo2);
    assert.equal(gate.hold(alert({ sensor_id: "co2-005" })), true);
    // Bounded by the gate's own grace (3 s), not by the write: a close that waited for it would
    // hang the suite, so the test gives up on it at 10 s instead.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const gaveUp = new Promise<string>((r) => timer = setTimeout(() => r("still waiting"), 10_000));
    const closed = await Promise.race([gate.close().then(() => "closed", (e) => `threw ${e}`), gaveUp]);
    clearTimeout(timer);
    assert.equal(closed, "closed");
    await silences.close();
  }
});

Deno.test("HeldAlerts releases only the alerts of the partitions it owns", async () => {
  const { logger } = captureLogger();
  const held = new HeldAlerts(null, logger);
  const mine = alert();
  const theirs = alert();
  held.keep(mine, 0);
  held.keep(theirs, 1);
  await held.assign([0]);
  const { alerts } = held.take(() => true);
  assert.deepEqual(alerts.map((a) => a.alert_id), [mine.alert_id]);
  assert.equal(held.size, 1);
  await held.assign([1]);
  assert.deepEqual(held.take(() => true).alerts.map((a) => a.alert_id), [theirs.alert_id]);
});

Deno.test("HeldAlerts shared through a log: its own records coming back change nothing, another instance's do", async () => {
  const { logger } = captureLogger();
  let apply!: (key: string, value: unknown) => void;
  const written: [string, HeldRecord | null][] = [];
  const log: HeldLog = {
    start: (a) => Promise.resolve(void (apply = a)),
    write: (key, record) => Promise.resolve(void written.push([key, record])),
    caughtUp: () => Promise.resolve(),
    close: () => Promise.resolve(),
  };
  const held = new HeldAlerts(log, logger);
  await held.start();
  await held.assign([0]);
  const a = alert();
  held.keep(a, 0);
  const { alerts, forget } = held.take(() => true);
  assert.deepEqual(alerts.map((x) => x.alert_id), [a.alert_id]);
  forget();
  held.keep({ ...a, repeat: 1 }, 0);
  await held.persisted();
  assert.deepEqual(written.map(([k, r]) => [k, r?.alert.repeat ?? null]), [
    [`held/${a.alert_id}`, a.repeat ?? null],
    [`held/${a.alert_id}`, null],
    [`held/${a.alert_id}`, 1],
  ]);
  // The topic brings the three back, in order: the alert held again stays held.
  for (const [key, record] of written) apply(key, record);
  assert.equal(held.size, 1);

  // Another instance's records (the previous owner of a partition) are applied.
  const other = alert();
  const record = { id: `held/${other.alert_id}`, partition: 1, writer: "another", alert: other };
  apply(record.id, record);
  assert.equal(held.size, 2);
  assert.deepEqual(
    held.take(() => true).alerts.map((x) => x.alert_id),
    [a.alert_id],
    "partition 1 is not owned",
  );
  apply(record.id, null);
  assert.equal(held.size, 0);
});
