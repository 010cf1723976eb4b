/**
 * LIMITS_TOPIC's follower against the real broker when the topic is deleted and created again: the
 * new topic is read from its start, and the old topic's sensors that the new one does not name lose
 * their bands (a tombstone each), as if the table had been written anew.
 */
import assert from "node:assert/strict";
import { ConfigResourceTypes } from "kafkajs";
import { createLogger, type Logger } from "../../../src/log.ts";
import {
  LimitsTopicFollower,
  type LimitsTopicOptions,
  LimitsTopicWatch,
} from "../../../src/source/limits_topic.ts";
import { TopicLayoutError } from "../../../src/transport/topics.ts";
import {
  createCompactedTopic,
  createTopics,
  kafka,
  produce,
  recreateTopic,
  uniqueNames,
  waitFor,
  withAdmin,
} from "../../helpers/kafka.ts";

/**
 * Sets the topic's configuration to `entries`, as `kafka-configs --alter` does for them (kafkajs's
 * AlterConfigs replaces the topic's other settings with the broker's defaults: the tests set none).
 */
function alterTopic(topic: string, entries: Record<string, string>): Promise<unknown> {
  return withAdmin((admin) =>
    admin.alterConfigs({
      validateOnly: false,
      resources: [{
        type: ConfigResourceTypes.TOPIC,
        name: topic,
        configEntries: Object.entries(entries).map(([name, value]) => ({ name, value })),
      }],
    })
  );
}

/** A follower of `topic` that keeps its table (a tombstone removes the key). */
function following(topic: string, logger: Logger, opts?: LimitsTopicOptions) {
  const table = new Map<string, string>();
  const follower = new LimitsTopicFollower(
    kafka(),
    topic,
    "tests",
    logger,
    (records) => {
      for (const r of records) {
        if (r.value === null) table.delete(r.key);
        else table.set(r.key, new TextDecoder().decode(r.value));
      }
    },
    undefined,
    opts,
  );
  return { follower, table };
}

Deno.test("the limits topic created again: read anew from its start, the old topic's other keys removed", async () => {
  const topic = `${uniqueNames("limits-recreated").events}.limits`;
  await createCompactedTopic(topic, 1);
  await produce(topic, [{ key: "a", value: "a1" }, { key: "b", value: "b1" }, { key: "x", value: "x1" }]);
  const { follower, table } = following(topic, createLogger({ level: "error" }));
  const sorted = () => [...table].sort(([a], [b]) => a.localeCompare(b));
  try {
    await follower.start();
    assert.deepEqual(sorted(), [["a", "a1"], ["b", "b1"], ["x", "x1"]]);
    await recreateTopic(topic, 1, { compacted: true });
    // More records than the old topic had: a position kept from it would skip the first ones.
    await produce(topic, [
      { key: "c", value: "c2" },
      { key: "a", value: "a2" },
      { key: "d", value: "d2" },
      { key: "e", value: "e2" },
      { key: "f", value: "f2" },
    ]);
    const want = [["a", "a2"], ["c", "c2"], ["d", "d2"], ["e", "e2"], ["f", "f2"]];
    await waitFor("the new table", () => JSON.stringify(sorted()) === JSON.stringify(want), 30_000).catch(
      (err: Error) => {
        throw new Error(`${err.message}: ${JSON.stringify(sorted())}`);
      },
    );
    assert.equal(follower.recreations, 1);
  } finally {
    await follower.stop();
  }
});

Deno.test("a limits topic whose retention deletes records is refused, naming the fix (its sensors' limits went after 7 days, unsaid)", async () => {
  const topic = `${uniqueNames("limits-retention").events}.limits`;
  // As tooling with the cluster's defaults makes it: cleanup.policy=delete, retention.ms 7 days.
  await createTopics([topic], 1);
  const follower = new LimitsTopicFollower(
    kafka(),
    topic,
    "tests",
    createLogger({ level: "error" }),
    () => {},
  );
  try {
    await assert.rejects(follower.start(), (err: Error) => {
      assert.ok(err instanceof TopicLayoutError, String(err));
      assert.match(err.message, new RegExp(`"${topic.replaceAll(".", "\\.")}" holds the sensors' limits`));
      assert.match(err.message, /--add-config cleanup\.policy=compact/);
      return true;
    });
  } finally {
    await follower.stop();
  }
});

Deno.test("the limits topic created again with a retention that deletes records: read anew, and an error says so with the fix", async () => {
  const topic = `${uniqueNames("limits-recreated-retention").events}.limits`;
  await createCompactedTopic(topic, 1);
  await produce(topic, [{ key: "a", value: "a1" }]);
  const lines: { level: string; msg: string }[] = [];
  const { follower, table } = following(
    topic,
    createLogger({ level: "error", sink: { write: (l) => lines.push(JSON.parse(l)), pretty: false } }),
  );
  try {
    await follower.start();
    // As tooling with the cluster's defaults makes it again: cleanup.policy=delete, 7 days.
    await recreateTopic(topic, 1);
    await produce(topic, [{ key: "b", value: "b2" }]);
    await waitFor("the new table", () => table.get("b") === "b2" && !table.has("a"), 30_000);
    const retention = () => lines.filter((l) => l.msg.includes("cleanup.policy=delete"));
    await waitFor("the error about its retention", () => retention().length > 0, 10_000).catch(() => {});
    assert.equal(retention().length, 1, JSON.stringify(lines));
    assert.equal(retention()[0]!.level, "error");
    assert.match(retention()[0]!.msg, /--add-config cleanup\.policy=compact/);
  } finally {
    await follower.stop();
  }
});

Deno.test("the limits topic's retention altered in place while it runs: an error once with the fix, the limits kept; set right again, an info once", async () => {
  const topic = `${uniqueNames("limits-altered").events}.limits`;
  await createCompactedTopic(topic, 1);
  await produce(topic, [{ key: "a", value: "a1" }]);
  const lines: { level: string; msg: string }[] = [];
  // Every half second here; production's interval is LIMITS_RETENTION_CHECK_MS.
  const { follower, table } = following(
    topic,
    createLogger({ level: "info", sink: { write: (l) => lines.push(JSON.parse(l)), pretty: false } }),
    { retentionCheckMs: 500 },
  );
  const said = (pattern: RegExp) => lines.filter((l) => pattern.test(l.msg));
  /** Waits for `n` more looks at the retention than now: what a look would say has been said by then. */
  const checks = async (n: number) => {
    const from = follower.retentionChecks;
    await waitFor(`${n} more retention checks`, () => follower.retentionChecks >= from + n, 30_000);
  };
  try {
    await follower.start();
    // What `kafka-configs --alter --add-config cleanup.policy=delete` does: retention.ms is the
    // broker's default (7 days).
    await alterTopic(topic, { "cleanup.policy": "delete" });
    await waitFor("the error about its retention", () => said(/cleanup\.policy=delete/).length > 0, 30_000);
    await checks(3);
    assert.equal(said(/cleanup\.policy=delete/).length, 1, JSON.stringify(lines));
    const error = said(/cleanup\.policy=delete/)[0]!;
    assert.equal(error.level, "error");
    assert.match(error.msg, new RegExp(`"${topic.replaceAll(".", "\\.")}" holds the sensors' limits`));
    assert.match(error.msg, /--add-config cleanup\.policy=compact/);
    // It runs on: the limits read stay, and new ones are read.
    await produce(topic, [{ key: "b", value: "b1" }]);
    await waitFor("the record written after", () => table.get("b") === "b1", 30_000);
    assert.equal(table.get("a"), "a1");

    await alterTopic(topic, { "cleanup.policy": "compact" });
    const right = () => said(/deletes none of them now/);
    await waitFor("the info that it is set right", () => right().length > 0, 30_000);
    await checks(3);
    assert.equal(right().length, 1, JSON.stringify(lines));
    assert.equal(right()[0]!.level, "info");
    assert.equal(said(/cleanup\.policy=delete/).length, 1, JSON.stringify(lines));
  } finally {
    await follower.stop();
  }
});

Deno.test("the main thread's watch of the limits topic (engine workers): refused at start; retention.ms set on a compact,delete topic said once, set right said once", async () => {
  const refused = `${uniqueNames("limits-watch-refused").events}.limits`;
  await createTopics([refused], 1);
  const lines: { level: string; msg: string }[] = [];
  const logger = createLogger({
    level: "info",
    sink: { write: (l) => lines.push(JSON.parse(l)), pretty: false },
  });
  const first = new LimitsTopicWatch(kafka(), refused, logger);
  try {
    await assert.rejects(first.start(), TopicLayoutError);
  } finally {
    await first.stop();
  }

  const topic = `${uniqueNames("limits-watch").events}.limits`;
  await createCompactedTopic(topic, 1);
  const watch = new LimitsTopicWatch(kafka(), topic, logger, undefined, { retentionCheckMs: 500 });
  const said = (pattern: RegExp) => lines.filter((l) => pattern.test(l.msg));
  const checks = async (n: number) => {
    const from = watch.retentionChecks;
    await waitFor(`${n} more retention checks`, () => watch.retentionChecks >= from + n, 30_000);
  };
  try {
    await watch.start();
    await alterTopic(topic, { "cleanup.policy": "compact,delete", "retention.ms": "86400000" });
    const deletes = () => said(/cleanup\.policy=compact,delete with retention\.ms=86400000/);
    await waitFor("the error about its retention", () => deletes().length > 0, 30_000);
    await checks(3);
    assert.equal(deletes().length, 1, JSON.stringify(lines));
    assert.equal(deletes()[0]!.level, "error");
    assert.match(deletes()[0]!.msg, /--add-config cleanup\.policy=compact/);

    await alterTopic(topic, { "cleanup.policy": "compact" });
    const right = () => said(new RegExp(`"${topic.replaceAll(".", "\\.")}" .*deletes none of them now`));
    await waitFor("the info that it is set right", () => right().length > 0, 30_000);
    await checks(3);
    assert.equal(right().length, 1, JSON.stringify(lines));
    assert.equal(deletes().length, 1, JSON.stringify(lines));
  } finally {
    await watch.stop();
  }
});
