/**
 * Hostile records on the silences topic, against the real broker: whatever is written there (not
 * JSON, the wrong shape, a key that is not the silence's id, a silence too big to match every alert
 * against, a tombstone for an id never seen, a committed transaction's marker last) neither stops an
 * instance from starting nor from following the silences written after it.
 */
import assert from "node:assert/strict";
import { ConfigResourceTypes, Partitioners } from "kafkajs";
import {
  createTopics,
  kafka,
  produce,
  readTopic,
  uniqueNames,
  waitFor,
  withAdmin,
} from "../../helpers/kafka.ts";
import { alert, captureLogger } from "../../helpers/notifiers.ts";
import { KafkaSilenceLog, type KafkaSilenceLogOptions } from "../../../src/notifiers/silences/kafka.ts";
import { HELD_KEY_PREFIX, HeldAlerts, type HeldRecord } from "../../../src/notifiers/silences/held.ts";
import { SilenceGate } from "../../../src/notifiers/silences/gate.ts";
import { Silences } from "../../../src/notifiers/silences/store.ts";
import { ensureTopics, KafkaOutput } from "../../../src/transport/kafka.ts";
import { silencesTopic } from "../../../src/transport/topics.ts";

/** The silences' log as the service makes it (src/notifiers/silences/setup.ts): `held/` keys are not its. */
const silencesLog = (opts: Omit<KafkaSilenceLogOptions, "accept">) =>
  new KafkaSilenceLog({ ...opts, accept: (key) => !key.startsWith(HELD_KEY_PREFIX) });

/** The held alerts' log as the service makes it. */
const heldLog = (opts: Omit<KafkaSilenceLogOptions, "accept">) =>
  new KafkaSilenceLog<HeldRecord>({
    ...opts,
    accept: (key) => key.startsWith(HELD_KEY_PREFIX),
    what: "held alerts",
  });

/**
 * A new one-partition silences topic named for `test`, and one instance's way to it: a client's output,
 * a logger whose lines are kept, and its silences and held alerts as the service makes them, each
 * reading with its own group (`${topic}-${group}`), looking for the topic's deletion every `watchMs`.
 */
async function newTopic(test: string) {
  const topic = `${uniqueNames(test).events}.silences`;
  await createTopics([topic], 1);
  const k = kafka();
  const output = new KafkaOutput(k);
  const { logger, lines } = captureLogger();
  const opts = (group: string, watchMs?: number) => ({
    kafka: k,
    topic,
    output,
    groupPrefix: `${topic}-${group}`,
    logger,
    ...(watchMs === undefined ? {} : { watchMs }),
  });
  return {
    topic,
    output,
    lines,
    /** Whether the broker lists the topic now. */
    listed: () => withAdmin(async (admin) => (await admin.listTopics()).includes(topic)),
    /** `waitFor`, with this instance's log lines in the error when it times out. */
    until: (what: string, fn: () => Promise<boolean> | boolean, timeoutMs: number) =>
      waitFor(what, fn, timeoutMs).catch((err) => {
        throw new Error(`${err.message}\n${lines.join("\n")}`);
      }),
    silences: (group: string, watchMs?: number, maxSilences?: number) =>
      new Silences({
        log: silencesLog(opts(group, watchMs)),
        logger,
        ...(maxSilences === undefined ? {} : { maxSilences }),
      }),
    held: (group: string, watchMs?: number) => new HeldAlerts(heldLog(opts(group, watchMs)), logger),
    logger,
  };
}

const silence = (id: string, over: Record<string, unknown> = {}) =>
  JSON.stringify({
    id,
    matchers: [{ name: "sensor_id", value: `${id}-*`, is_regex: false, is_equal: true }],
    starts_at: new Date(Date.now() - 60_000).toISOString(),
    ends_at: new Date(Date.now() + 3600_000).toISOString(),
    created_by: "ops",
    comment: "maintenance",
    updated_at: new Date().toISOString(),
    ...over,
  });

const hostile = (tag: string) => [
  { key: `${tag}-junk`, value: "{not json" },
  { key: `${tag}-shape`, value: JSON.stringify({ id: `${tag}-shape`, matchers: "all" }) },
  { key: `${tag}-array`, value: "[1,2,3]" },
  // Someone else's id under this key: expiring "victim" through the API would write "other".
  { key: `${tag}-victim`, value: silence(`${tag}-other`) },
  // 5,000 matchers would be tested against every alert; 500 KB of comment kept in memory and listed.
  {
    key: `${tag}-wide`,
    value: silence(`${tag}-wide`, {
      matchers: Array.from(
        { length: 5000 },
        (_, i) => ({ name: "sensor_id", value: `s-${i}`, is_equal: true }),
      ),
    }),
  },
  { key: `${tag}-long`, value: silence(`${tag}-long`, { comment: "x".repeat(500_000) }) },
  { key: `${tag}-ghost`, value: null },
  { key: null, value: silence(`${tag}-keyless`) },
];

Deno.test("the silences of an instance start and keep following past hostile records on their topic", async () => {
  const on = await newTopic("silences-hostile");
  const { topic, output, lines } = on;
  await produce(topic, [...hostile("a"), { key: "good-1", value: silence("good-1") }]);
  // A transaction's commit marker is the topic's last offset: no message of it reaches eachBatch.
  const tx = kafka().producer({
    transactionalId: `${topic}-tx`,
    idempotent: true,
    maxInFlightRequests: 1,
    createPartitioner: Partitioners.DefaultPartitioner,
  });
  await tx.connect();
  const t = await tx.transaction();
  await t.send({ topic, messages: [{ key: "good-2", value: silence("good-2") }] });
  await t.commit();
  await tx.disconnect();

  const silences = on.silences("reader");
  try {
    await silences.start();
    assert.deepEqual(silences.list().map((s) => s.id).sort(), ["good-1", "good-2"]);
    for (const tag of ["a-junk", "a-shape", "a-array", "a-victim", "a-wide", "a-long"]) {
      assert.ok(lines.some((l) => l.includes(tag)), `no warning names "${tag}":\n${lines.join("\n")}`);
    }

    await produce(topic, [...hostile("b"), { key: "good-1", value: null }, {
      key: "good-3",
      value: silence("good-3"),
    }]);
    await waitFor(
      "the silences written after the hostile records",
      () => silences.list().map((s) => s.id).sort().join() === "good-2,good-3",
      30_000,
    );
    const created = await silences.create({
      matchers: [{ name: "sensor_id", value: "new-*", is_regex: false, is_equal: true }],
      ends_at: new Date(Date.now() + 3600_000).toISOString(),
      created_by: "ops",
      comment: "still writes",
    });
    assert.equal(silences.get(created.id)?.status, "active");
  } finally {
    await silences.close();
    await output.close();
  }
});

Deno.test("a silences topic whose last records are a transaction's (its marker newer than every record) is not taken for one created again", async () => {
  const on = await newTopic("silences-marker-watched");
  const { topic, output, lines } = on;
  // A transaction writes a tombstone: neither follower knows a record to write back, so a look
  // that took the commit marker (stamped when committed, after the record) for a record newer than
  // every one read would write nothing, read the topic again and take it again, every look.
  const tx = kafka().producer({
    transactionalId: `${topic}-tx`,
    idempotent: true,
    maxInFlightRequests: 1,
    createPartitioner: Partitioners.DefaultPartitioner,
  });
  await tx.connect();
  const t = await tx.transaction();
  await t.send({ topic, messages: [{ key: "gone", value: null }] });
  await new Promise((resolve) => setTimeout(resolve, 50));
  await t.commit();
  await tx.disconnect();

  const silences = on.silences("reader", 100);
  const held = on.held("held", 100);
  try {
    await silences.start();
    await held.start();
    // Many looks.
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    assert.deepEqual(lines.filter((l) => l.includes("created again")), []);
  } finally {
    await held.close();
    await silences.close();
    await output.close();
  }
});

Deno.test("the silences of an instance survive their topic being deleted, follow it once created again, and are written back to it", async () => {
  const on = await newTopic("silences-deleted");
  const { topic, output } = on;
  await produce(topic, [{ key: "before", value: silence("before") }]);
  const silences = on.silences("reader", 200);
  try {
    await silences.start();
    assert.deepEqual(silences.list().map((s) => s.id), ["before"]);
    await withAdmin((admin) => admin.deleteTopics({ topics: [topic] }));
    await waitFor(
      "the topic to be gone",
      async () => !(await on.listed()),
      30_000,
    );
    await createTopics([topic], 1);
    await produce(topic, [{ key: "after", value: silence("after") }]);
    await on.until("the silence written to the new topic", () => silences.get("after") !== null, 60_000);
    assert.ok(silences.get("before") !== null, "what was read is kept");
    // What a restarted instance reads: the silence of before the deletion was written back.
    await readTopic(topic, (values) => values.some((v) => v.includes('"id":"before"')), 60_000);
    const restarted = on.silences("reader");
    await restarted.start();
    try {
      assert.deepEqual(restarted.list().map((s) => s.id).sort(), ["after", "before"]);
    } finally {
      await restarted.close();
    }
  } finally {
    await silences.close();
    await output.close();
  }
});

Deno.test("a watched silences topic written to by other instances, with records stamped out of order, is never taken for one created again", async () => {
  const on = await newTopic("silences-watched");
  const { topic, output, lines } = on;
  const silences = on.silences("reader", 100);
  try {
    await silences.start();
    // Another instance writes while this one looks every 0.1 s; one record stamped in the past
    // (a producer's clock behind) sits after newer ones.
    for (let i = 0; i < 12; i++) {
      await produce(topic, [{ key: `other-${i}`, value: silence(`other-${i}`) }]);
      if (i === 6) {
        await produce(topic, [{
          key: "late",
          value: silence("late"),
          timestamp: String(Date.now() - 3600_000),
        }]);
      }
      await new Promise((resolve) => setTimeout(resolve, 150));
    }
    await waitFor("every silence read", () => silences.list().length === 13, 30_000);
    // A few more looks at the topic once it stopped moving.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    assert.deepEqual(lines.filter((l) => l.includes("created again")), []);
    // Nothing written back: only the 13 records produced are on the topic.
    const ends = await withAdmin((admin) => admin.fetchTopicOffsets(topic));
    assert.deepEqual(ends.map((o) => Number(o.high)), [13]);
  } finally {
    await silences.close();
    await output.close();
  }
});

/**
 * Between two looks the topic is deleted, created again and written to by another instance past the
 * position read (2): the consumer goes on at its position in the new topic, reads new-2 and never
 * new-0 or new-1, unless the look tells the topic created again. `stamp` is the new records' time.
 */
async function recreatedPastPosition(name: string, stamp?: string): Promise<void> {
  const on = await newTopic(name);
  const { topic, output } = on;
  await produce(topic, [{ key: "old-0", value: silence("old-0") }, {
    key: "old-1",
    value: silence("old-1"),
  }]);
  const silences = on.silences("reader", 2_000);
  try {
    await silences.start();
    await withAdmin((admin) => admin.deleteTopics({ topics: [topic] }));
    await waitFor("the topic to be gone", async () => !(await on.listed()), 30_000);
    await createTopics([topic], 1);
    await produce(
      topic,
      ["new-0", "new-1", "new-2"].map((id) => ({
        key: id,
        value: silence(id),
        ...(stamp === undefined ? {} : { timestamp: stamp }),
      })),
    );
    await on.until("the silences skipped in the new topic", () => silences.get("new-0") !== null, 20_000);
    assert.ok(silences.get("new-1") !== null);
    assert.ok(silences.get("old-0") !== null, "what was read is kept");
  } finally {
    await silences.close();
    await output.close();
  }
}

// Stamped now, new-2 is newer than new-0 and new-1, which the consumer skipped.
Deno.test("a silences topic created again between two looks and written past the position read is told all the same", () =>
  recreatedPastPosition("silences-recreated-past"));

Deno.test("a silences topic created again between two looks is told though a writer's clock ran an hour ahead on the old one", async () => {
  const on = await newTopic("silences-clock-ahead");
  const { topic, output } = on;
  // The topic as the service creates it (this test's helper made one with the broker's defaults).
  const asTheServiceMakesIt = () =>
    withAdmin(async (admin) => {
      await admin.deleteTopics({ topics: [topic] }).catch(() => {});
      await waitFor("the topic to be gone", async () => !(await on.listed()), 30_000);
      await ensureTopics(admin, [silencesTopic(topic)]);
    });
  await asTheServiceMakesIt();
  // An instance whose clock runs an hour ahead wrote the last silence of the old topic: stamped by
  // that clock, no record of a topic created again would be newer than it for an hour.
  await produce(topic, [
    { key: "old-0", value: silence("old-0") },
    { key: "old-1", value: silence("old-1"), timestamp: String(Date.now() + 3600_000) },
  ]);
  const silences = on.silences("reader", 2_000);
  try {
    await silences.start();
    await on.until("the old silences read", () => silences.get("old-1") !== null, 20_000);
    // Between two looks: created again (by another instance that found it gone) and written to past
    // the position read (2).
    await asTheServiceMakesIt();
    await produce(topic, [
      { key: "new-0", value: silence("new-0") },
      { key: "new-1", value: silence("new-1") },
      { key: "new-2", value: silence("new-2") },
    ]);
    await on.until("the silences skipped in the new topic", () => silences.get("new-0") !== null, 20_000);
    assert.ok(silences.get("new-1") !== null);
  } finally {
    await silences.close();
    await output.close();
  }
});

// Written by an instance whose clock runs an hour behind: no record of the new topic is newer than
// those read, so no look at stamps tells it; its topic id does.
Deno.test("a silences topic created again between two looks is told though its writer's clock runs an hour behind", () =>
  recreatedPastPosition("silences-clock-behind", String(Date.now() - 3600_000)));

Deno.test("an instance whose silences topic was deleted creates it again, compacted, with the silences it knows", async () => {
  const on = await newTopic("silences-gone");
  const { topic, output } = on;
  await produce(topic, [{ key: "kept", value: silence("kept") }]);
  const silences = on.silences("reader", 200);
  try {
    await silences.start();
    await withAdmin((admin) => admin.deleteTopics({ topics: [topic] }));
    // Listed, not read: a consumer's metadata request could create it (not compacted) itself.
    await on.until("the topic to be created again", on.listed, 60_000);
    const policy = await withAdmin(async (admin) => {
      const { resources } = await admin.describeConfigs({
        resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: ["cleanup.policy"] }],
        includeSynonyms: false,
      });
      return resources[0]?.configEntries.find((e) => e.configName === "cleanup.policy")?.configValue;
    });
    assert.equal(policy, "compact");
    await readTopic(topic, (values) => values.some((v) => v.includes('"id":"kept"')), 60_000);
    assert.ok(silences.get("kept") !== null);
  } finally {
    await silences.close();
    await output.close();
  }
});

Deno.test("held alerts' records on the silences topic are neither refused by the silences' limits nor dropped by them", async () => {
  const on = await newTopic("silences-held-keys");
  const { topic, output, lines } = on;
  // Longer than a silence's id (64), with more text than a silence's comment (1,000): yet a valid held alert.
  const alertId = `a-${"x".repeat(80)}`;
  const held: HeldRecord = {
    id: `${HELD_KEY_PREFIX}${alertId}`,
    partition: 0,
    writer: "another-instance",
    alert: alert({ alert_id: alertId, description: "d".repeat(5_000) }),
  };
  await produce(topic, [
    ...hostile("h"),
    { key: held.id, value: JSON.stringify(held) },
    { key: "good-1", value: silence("good-1") },
  ]);
  const silences = on.silences("silences");
  const heldAlerts = on.held("held");
  try {
    await silences.start();
    await heldAlerts.start();
    assert.deepEqual(silences.list().map((s) => s.id), ["good-1"]);
    assert.equal(heldAlerts.size, 1, lines.join("\n"));
    assert.ok(
      !lines.some((l) => l.includes(HELD_KEY_PREFIX)),
      `a held record was warned about:\n${lines.join("\n")}`,
    );
    // The hostile silences were still refused.
    assert.ok(lines.some((l) => l.includes("h-wide")), lines.join("\n"));
  } finally {
    await heldAlerts.close();
    await silences.close();
    await output.close();
  }
});

Deno.test("an instance whose silences topic was deleted writes back the alerts its silences hold too, so a restart still releases them", async () => {
  const on = await newTopic("silences-held-gone");
  const { topic, output, lines } = on;
  await produce(topic, [{ key: "quiet", value: silence("quiet") }]);
  const silences = on.silences("silences", 200);
  const gate = new SilenceGate(silences, on.logger, on.held("held", 200));
  let restarted: HeldAlerts | null = null;
  try {
    await silences.start();
    await gate.start("assigned");
    const held = alert({ alert_id: "held-before-deletion", sensor_id: "quiet-1" });
    assert.equal(gate.hold(held, 0), true, "the silence holds it");
    await gate.persisted();
    await withAdmin((admin) => admin.deleteTopics({ topics: [topic] }));
    const both = (values: string[]) =>
      values.some((v) => v.includes('"id":"quiet"')) &&
      values.some((v) => v.includes(`"id":"${HELD_KEY_PREFIX}held-before-deletion"`));
    await on.until("the topic to be created again", on.listed, 60_000);
    // readTopic gives up quietly after its timeout: what it read is checked.
    const read = await readTopic(topic, both, 60_000);
    assert.ok(both(read.map((r) => r.value)), `not written back:\n${lines.join("\n")}`);
    // What a notifier restarted now reads back.
    restarted = on.held("again");
    await restarted.start();
    assert.equal(restarted.size, 1);
    assert.equal(gate.held, 1, "the running instance still holds it");
  } finally {
    await restarted?.close();
    await gate.close();
    await silences.close();
    await output.close();
  }
});

Deno.test("silences on the topic beyond the limit are refused as the API refuses them, counted, until a tombstone makes room", async () => {
  const on = await newTopic("silences-cap");
  const { topic, lines } = on;
  await produce(topic, [
    ...["s-1", "s-2", "s-3", "s-4", "s-5"].map((id) => ({ key: id, value: silence(id) })),
    // An edit of a kept silence is applied whatever the limit.
    {
      key: "s-1",
      value: silence("s-1", { comment: "edited", updated_at: new Date(Date.now() + 1).toISOString() }),
    },
  ]);
  const silences = on.silences("reader", undefined, 3);
  try {
    await silences.start();
    assert.deepEqual(silences.list().map((s) => s.id).sort(), ["s-1", "s-2", "s-3"]);
    assert.equal(silences.get("s-1")?.comment, "edited");
    assert.equal(silences.refused, 2);
    const warned = lines.filter((l) => /beyond the limit/.test(l));
    // Once per batch the follower hands over: the 6 records came in one or two.
    assert.ok(warned.length >= 1 && warned.length <= 2, lines.join("\n"));

    await produce(topic, [{ key: "s-2", value: null }, { key: "s-6", value: silence("s-6") }]);
    await on.until(
      "the silence written after a tombstone made room",
      () => silences.list().map((s) => s.id).sort().join() === "s-1,s-3,s-6",
      30_000,
    );
    assert.equal(silences.refused, 2);
  } finally {
    await silences.close();
  }
});
