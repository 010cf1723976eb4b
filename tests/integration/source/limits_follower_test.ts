/**
 * LIMITS_TOPIC's follower against the real broker when the topic is deleted and created again: the
 * new topic is read from its start, and the old topic's sensors that the new one does not name lose
 * their bands (a tombstone each), as if the table had been written anew.
 */
import assert from "node:assert/strict";
import { createLogger } from "../../../src/log.ts";
import { LimitsTopicFollower } from "../../../src/source/limits_topic.ts";
import { TopicLayoutError } from "../../../src/transport/topics.ts";
import {
  createCompactedTopic,
  createTopics,
  kafka,
  produce,
  recreateTopic,
  uniqueNames,
  waitFor,
} from "../../helpers/kafka.ts";

Deno.test("the limits topic created again: read anew from its start, the old topic's other keys removed", async () => {
  const topic = `${uniqueNames("limits-recreated").events}.limits`;
  await createCompactedTopic(topic, 1);
  await produce(topic, [{ key: "a", value: "a1" }, { key: "b", value: "b1" }, { key: "x", value: "x1" }]);
  const table = new Map<string, string>();
  const follower = new LimitsTopicFollower(
    kafka(),
    topic,
    "tests",
    createLogger({ level: "error" }),
    (records) => {
      for (const r of records) {
        if (r.value === null) table.delete(r.key);
        else table.set(r.key, new TextDecoder().decode(r.value));
      }
    },
  );
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
  const table = new Map<string, string>();
  const follower = new LimitsTopicFollower(
    kafka(),
    topic,
    "tests",
    createLogger({ level: "error", sink: { write: (l) => lines.push(JSON.parse(l)), pretty: false } }),
    (records) => {
      for (const r of records) {
        if (r.value === null) table.delete(r.key);
        else table.set(r.key, new TextDecoder().decode(r.value));
      }
    },
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
