import assert from "node:assert/strict";
import { waitFor } from "../../helpers/kafka.ts";
import { alert, captureLogger } from "../../helpers/notifiers.ts";
import { fileSilences, silenceOn } from "../../helpers/silences.ts";
import { FileSilenceLog } from "../../../src/notifiers/silences/file.ts";
import { SilenceGate } from "../../../src/notifiers/silences/gate.ts";
import { SILENCE_RETENTION_MS, SilenceLimitError, Silences } from "../../../src/notifiers/silences/store.ts";
import type { SensorAlert } from "../../../src/contract/schemas.ts";

const store = (over: { now?: () => number; maxSilences?: number } = {}) =>
  fileSilences({ prefix: "silences-store-", ...over });

const input = (endsInMs: number, value = "co2-*") => silenceOn("sensor_id", value, endsInMs);

Deno.test("SilenceGate holds a silenced alert and hands it in when its silence ends at its time", async () => {
  const { silences } = await store();
  try {
    const gate = new SilenceGate(silences, captureLogger().logger);
    const released: SensorAlert[] = [];
    gate.attach((a) => Promise.resolve(void released.push(...a)));
    await silences.create(input(400));
    const firing = alert();
    assert.equal(gate.hold(firing), true);
    assert.equal(gate.hold(alert({ sensor_id: "temp-001" })), false, "not matched");
    assert.equal(silences.suppressed, 1);
    await waitFor("the silence to end", () => released.length > 0, 10_000);
    assert.deepEqual(released.map((a) => a.alert_id), [firing.alert_id]);
    assert.equal(gate.held, 0);
    assert.equal(gate.hold(firing), false, "no longer silenced");
  } finally {
    await silences.close();
  }
});

Deno.test("SilenceGate drops a held alert that resolved while silenced, and releases on expiry", async () => {
  const { silences } = await store();
  try {
    const gate = new SilenceGate(silences, captureLogger().logger);
    const released: SensorAlert[] = [];
    gate.attach((a) => Promise.resolve(void released.push(...a)));
    const s = await silences.create(input(3600_000));
    const resolves = alert();
    const fires = alert();
    assert.equal(gate.hold(resolves), true);
    assert.equal(gate.hold({ ...resolves, state: "resolved" }), true);
    assert.equal(gate.hold(fires), true);
    assert.equal(gate.hold({ ...fires, repeat: 1 }), true);
    assert.equal(gate.held, 1);
    await silences.expire(s.id);
    assert.deepEqual(released.map((a) => `${a.alert_id} ${a.state} ${a.repeat ?? 0}`), [
      `${fires.alert_id} firing 1`,
    ]);
  } finally {
    await silences.close();
  }
});

Deno.test("Silences: a pending silence starts at its time, the newest version wins, expired ones are forgotten after retention", async () => {
  let now = Date.now();
  const { silences, file } = await store({ now: () => now });
  try {
    const pending = await silences.create({
      ...input(7200_000),
      starts_at: new Date(now + 3600_000).toISOString(),
    });
    assert.equal(pending.status, "pending");
    assert.deepEqual(silences.silencing(alert()), []);
    now += 3600_000;
    assert.equal(silences.get(pending.id)?.status, "active");
    assert.deepEqual(silences.silencing(alert()), [pending.id]);
    assert.equal(silences.active, 1);

    const later = new Date(now + 5 * 3600_000).toISOString();
    await silences.extend(pending.id, later);
    assert.equal(silences.get(pending.id)?.ends_at, later);
    const saved = JSON.parse(await Deno.readTextFile(file));
    assert.equal(saved[0].ends_at, later, "written to the file");

    await silences.expire(pending.id);
    assert.equal(silences.get(pending.id)?.status, "expired");
    await assert.rejects(() => silences.extend(pending.id, later), /has expired/);
    assert.deepEqual(await silences.gc(), []);
    now += SILENCE_RETENTION_MS + 1;
    assert.deepEqual(await silences.gc(), [pending.id]);
    assert.deepEqual(silences.list(), []);
    assert.deepEqual(JSON.parse(await Deno.readTextFile(file)), []);
  } finally {
    await silences.close();
  }
});

Deno.test("Silences refuses a record from the log that is not a valid silence, and keeps the others", async () => {
  const dir = await Deno.makeTempDir({ prefix: "silences-store-" });
  const file = `${dir}/silences.json`;
  const good = {
    id: "good",
    matchers: [{ name: "sensor_id", value: "co2-001", is_regex: false, is_equal: true }],
    starts_at: new Date(Date.now() - 1000).toISOString(),
    ends_at: new Date(Date.now() + 3600_000).toISOString(),
    created_by: "t",
    comment: "c",
    updated_at: new Date().toISOString(),
  };
  const bad = {
    ...good,
    id: "bad",
    matchers: [{ name: "sensor_id", value: "(", is_regex: true, is_equal: true }],
  };
  await Deno.writeTextFile(file, JSON.stringify([good, bad]));
  const { logger, lines } = captureLogger();
  const silences = new Silences({ log: new FileSilenceLog(file), logger });
  await silences.start();
  try {
    assert.deepEqual(silences.list().map((s) => s.id), ["good"]);
    assert.ok(lines.some((l) => /not valid/.test(l) && /bad/.test(l)), lines.join("\n"));
  } finally {
    await silences.close();
  }
});

Deno.test("Silences refuses a new silence beyond its limit until one is expired", async () => {
  const { silences } = await store({ maxSilences: 2 });
  try {
    const first = await silences.create(input(3600_000));
    await silences.create(input(3600_000));
    await assert.rejects(() => silences.create(input(3600_000)), SilenceLimitError);
    await silences.expire(first.id);
    assert.equal((await silences.create(input(3600_000))).status, "active");
  } finally {
    await silences.close();
  }
});

Deno.test("Silences applies concurrent edits of one silence in call order: the instance and a restart agree", async () => {
  // A clock that does not move: both edits are stamped in the same millisecond.
  const t = Date.now();
  const { silences, file } = await store({ now: () => t });
  let shown;
  try {
    const s = await silences.create(input(3600_000));
    await Promise.all([
      silences.extend(s.id, new Date(t + 7200_000).toISOString()),
      silences.expire(s.id),
    ]);
    shown = silences.get(s.id)!;
    assert.equal(shown.status, "expired", "expired after the extension, as called");
  } finally {
    await silences.close();
  }
  const again = new Silences({ log: new FileSilenceLog(file), logger: captureLogger().logger, now: () => t });
  await again.start();
  try {
    assert.deepEqual(again.get(shown.id), shown);
  } finally {
    await again.close();
  }
});

Deno.test("Silences keeps its limit under concurrent creates", async () => {
  const { silences } = await store({ maxSilences: 3 });
  try {
    const results = await Promise.allSettled(
      Array.from({ length: 10 }, () => silences.create(input(3600_000))),
    );
    assert.equal(results.filter((r) => r.status === "fulfilled").length, 3);
    for (const r of results) {
      if (r.status === "rejected") assert.ok(r.reason instanceof SilenceLimitError, String(r.reason));
    }
    assert.equal(silences.list().length, 3);
  } finally {
    await silences.close();
  }
});

Deno.test("Silences keeps at most as many expired silences as its limit: creating and expiring in a loop cannot grow it", async () => {
  const { silences } = await store({ maxSilences: 3 });
  try {
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) {
      const s = await silences.create(input(3600_000));
      ids.push(s.id);
      await silences.expire(s.id);
    }
    const kept = silences.list();
    assert.equal(kept.length, 3, kept.map((s) => s.status).join());
    // The newest expired ones stay listed.
    assert.deepEqual(kept.map((s) => s.id).sort(), ids.slice(-3).sort());
  } finally {
    await silences.close();
  }
});
