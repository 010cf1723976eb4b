import assert from "node:assert/strict";
import { waitFor } from "../../helpers/kafka.ts";
import { alert, captureLogger } from "../../helpers/notifiers.ts";
import { fileSilences, silenceOn } from "../../helpers/silences.ts";
import { FileSilenceLog } from "../../../src/notifiers/silences/file.ts";
import { SilenceGate } from "../../../src/notifiers/silences/gate.ts";
import {
  SILENCE_RETENTION_MS,
  SilenceLimitError,
  type SilenceLog,
  Silences,
} from "../../../src/notifiers/silences/store.ts";
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

/** A stored silence record, as the topic or the file holds it; in force for an hour by default. */
function record(id: string, over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id,
    matchers: [{ name: "sensor_id", value: `${id}-*`, is_regex: false, is_equal: true }],
    starts_at: new Date(Date.now() - 60_000).toISOString(),
    ends_at: new Date(Date.now() + 3600_000).toISOString(),
    created_by: "ops",
    comment: "maintenance",
    updated_at: new Date().toISOString(),
    ...over,
  };
}

/**
 * A log that hands its records over as the topic's follower does (src/notifiers/silences/kafka.ts):
 * each batch in one synchronous run of `apply`, which `batch` starts.
 */
function batchLog() {
  let apply: (id: string, record: unknown) => void = () => {};
  const log: SilenceLog = {
    start(a) {
      apply = a;
      return Promise.resolve();
    },
    write: () => Promise.resolve(),
    close: () => Promise.resolve(),
  };
  return {
    log,
    batch(records: Record<string, unknown>[]) {
      for (const r of records) apply(r.id as string, r);
    },
  };
}

Deno.test("Silences refuses records from the log beyond its limit, as the API does: edits of kept ones still apply, one warning per batch, counted", async () => {
  const dir = await Deno.makeTempDir({ prefix: "silences-store-" });
  const file = `${dir}/silences.json`;
  const later = new Date(Date.now() + 7200_000).toISOString();
  await Deno.writeTextFile(
    file,
    JSON.stringify([
      record("s-1"),
      record("s-2"),
      record("gone", { ends_at: new Date(Date.now() - 1000).toISOString() }),
      record("s-3"),
      record("s-4"),
      record("s-5"),
      // An edit of a kept silence: applied whatever the limit.
      record("s-1", { ends_at: later, updated_at: new Date(Date.now() + 1).toISOString() }),
    ]),
  );
  const { logger, lines } = captureLogger();
  const silences = new Silences({ log: new FileSilenceLog(file), logger, maxSilences: 3 });
  await silences.start();
  try {
    assert.deepEqual(silences.list().map((s) => s.id).sort(), ["gone", "s-1", "s-2", "s-3"]);
    assert.equal(silences.get("s-1")?.ends_at, later);
    assert.equal(silences.refused, 2);
    const warned = lines.filter((l) => /beyond the limit/.test(l));
    assert.equal(warned.length, 1, lines.join("\n"));
    assert.match(warned[0]!, /s-4/);
  } finally {
    await silences.close();
  }
});

Deno.test("Silences refuses silences from the API and the log past the limit of distinct regexes and wildcards, counting one shared by many silences once", async () => {
  const { log, batch } = batchLog();
  const regex = (value: string) => ({ name: "labels.team", value, is_regex: true, is_equal: true });
  const silences = new Silences({ log, logger: captureLogger().logger, maxPatterns: 3 });
  await silences.start();
  try {
    batch([
      record("a", { matchers: [regex("a.*"), regex("b.*")] }),
      record("b", { matchers: [regex("a.*"), regex("b.*")] }),
      record("c", { matchers: [regex("c.*"), regex("d.*")] }),
      record("d", { matchers: [regex("c.*")] }),
      // A wildcard is a pattern too.
      record("e", { matchers: [{ name: "sensor_id", value: "temp-*", is_regex: false, is_equal: true }] }),
    ]);
    await silences.settled();
    assert.deepEqual(silences.list().map((s) => s.id).sort(), ["a", "b", "d"]);
    assert.equal(silences.refused, 2);
    await assert.rejects(
      () =>
        silences.create({
          matchers: [regex("e.*")],
          ends_at: new Date(Date.now() + 3600_000).toISOString(),
          created_by: "ops",
          comment: "x",
        }),
      SilenceLimitError,
    );
  } finally {
    await silences.close();
  }
});

Deno.test("Applying a batch of N silence records parses each one's times once: O(N), not O(N × silences)", async () => {
  const N = 300;
  const dir = await Deno.makeTempDir({ prefix: "silences-store-" });
  const file = `${dir}/silences.json`;
  await Deno.writeTextFile(file, JSON.stringify(Array.from({ length: N }, (_, i) => record(`s-${i}`))));
  const silences = new Silences({ log: new FileSilenceLog(file), logger: captureLogger().logger });
  const parse = Date.parse;
  let parses = 0;
  Date.parse = (s: string) => (parses++, parse(s));
  try {
    await silences.start();
  } finally {
    Date.parse = parse;
  }
  try {
    assert.equal(silences.list().length, N);
    // 2 per record (its start and end), and gc's look at each end once. Re-arming at each record
    // parsed every silence's two times each time: 2 × N²/2 = 90,000.
    assert.ok(parses <= 4 * N, `${parses} Date.parse calls for ${N} records`);
  } finally {
    await silences.close();
  }
});

Deno.test("SilenceGate looks at the held alerts once per batch of silence records, in chunks between which the event loop runs", async () => {
  const { log, batch } = batchLog();
  const silences = new Silences({ log, logger: captureLogger().logger });
  await silences.start();
  try {
    const gate = new SilenceGate(silences, captureLogger().logger);
    const released: SensorAlert[] = [];
    gate.attach((a) => Promise.resolve(void released.push(...a)));
    await silences.create(silenceOn("rule_id", "co2-critical"));
    const H = 500;
    for (let i = 0; i < H; i++) assert.equal(gate.hold(alert({ sensor_id: `co2-${i}` })), true);
    await gate.settled();

    // Silences no held alert matches (an unindexed regex each, so every one is looked at).
    const N = 20;
    const records = Array.from({ length: N }, (_, i) =>
      record(`r-${i}`, {
        matchers: [
          { name: "labels.team", value: ".*(a|f|e|t|y).*", is_regex: true, is_equal: true },
          { name: "labels.team", value: `nobody-${i}`, is_regex: true, is_equal: true },
        ],
      }));
    const calls = { before: 0, after: 0 };
    let timerFired = false;
    const silencing = silences.silencing.bind(silences);
    silences.silencing = (a) => (timerFired ? calls.after++ : calls.before++, silencing(a));
    setTimeout(() => timerFired = true, 0);
    batch(records);
    await gate.settled();
    assert.equal(gate.held, H);
    assert.deepEqual(released, []);
    // Once per batch: each held alert looked at once, not once per record (N × H = 10,000).
    assert.equal(calls.before + calls.after, H);
    // A timer set before the batch ran while the recheck was under way.
    assert.ok(timerFired && calls.after > 0, JSON.stringify(calls));
  } finally {
    await silences.close();
  }
});

Deno.test("silencing() skips silences whose rule_id or sensor_id is another, and tests a matcher repeated across silences once per alert", async () => {
  const { log, batch } = batchLog();
  const silences = new Silences({ log, logger: captureLogger().logger });
  await silences.start();
  try {
    const shared = Array.from(
      { length: 31 },
      () => ({ name: "labels.team", value: ".*(a|f|e|t|y).*", is_regex: true, is_equal: true }),
    );
    const S = 200;
    batch([
      // Named for other sensors: never matched against this alert.
      ...Array.from({ length: S }, (_, i) =>
        record(`other-${i}`, {
          matchers: [...shared, { name: "sensor_id", value: `temp-${i}`, is_regex: false, is_equal: true }],
        })),
      // Nothing to index: the shared regex is run once, each one's last (its own) once.
      ...Array.from({ length: S }, (_, i) =>
        record(`any-${i}`, {
          matchers: [...shared, {
            name: "labels.team",
            value: `nobody-${i}`,
            is_regex: true,
            is_equal: true,
          }],
        })),
      record("mine", { matchers: [...shared, { name: "sensor_id", value: "co2-001", is_equal: true }] }),
    ]);
    await silences.settled();
    const before = silences.matcherTests;
    assert.deepEqual(silences.silencing(alert()), ["mine"]);
    const tests = silences.matcherTests - before;
    // Every matcher of every silence: (2S + 1) × 32 = 12,832.
    assert.ok(tests <= S + 3, `${tests} matcher tests`);
  } finally {
    await silences.close();
  }
});
