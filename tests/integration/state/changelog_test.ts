/**
 * The changelog reader against the real broker: a partition's snapshot has its newest records, and
 * a partition handed over to the engine (no longer followed) is read anew when it is restored again.
 */
import assert from "node:assert/strict";
import { createLogger } from "../../../src/log.ts";
import { ChangelogReader } from "../../../src/state/changelog.ts";
import { changelogRecords } from "../../../src/state/format.ts";
import { KafkaOutput } from "../../../src/transport/kafka.ts";
import { createTopics, kafka, uniqueNames } from "../../helpers/kafka.ts";

const logger = createLogger({ level: "error" });
const keepAlive = () => Promise.resolve();
const timer = (last: number) => ({
  rule_hash: "h1",
  last,
  sensor_type: "temperature" as const,
  unit: "C",
  location: null,
});

Deno.test("ChangelogReader: a handed-over partition is read anew; the others are followed", async () => {
  const n = uniqueNames("changelog");
  const topic = `${n.group}-state-changelog`;
  await createTopics([topic], 2);
  const output = new KafkaOutput(kafka());
  const reader = new ChangelogReader(kafka(), topic, n.group, logger);
  const dm = (group: string, last: number) => ({
    kind: "deadman" as const,
    rule: "silent",
    group,
    value: timer(last),
  });
  try {
    await output.send([
      ...changelogRecords(topic, 0, [dm("a", 1), dm("b", 1)], ["e1"]),
      ...changelogRecords(topic, 1, [dm("c", 1)], null),
    ]);
    await reader.start();
    const first = await reader.snapshot(0, keepAlive);
    assert.deepEqual(first.changes.map((e) => [e.group, e.value]), [["a", timer(1)], ["b", timer(1)]]);
    assert.deepEqual(first.recentIds, ["e1"]);

    reader.handOver(0);
    // The engine writes on: a newer value for "a", "b" deleted (a tombstone), and partition 1 moves on too.
    await output.send([
      ...changelogRecords(topic, 0, [dm("a", 2), {
        kind: "deadman",
        rule: "silent",
        group: "b",
        value: null,
      }], [
        "e2",
      ]),
      ...changelogRecords(topic, 1, [dm("c", 2)], null),
    ]);
    const again = await reader.snapshot(0, keepAlive);
    assert.deepEqual(again.changes.map((e) => [e.group, e.value]), [["a", timer(2)]]);
    assert.deepEqual(again.recentIds, ["e2"]);
    const other = await reader.snapshot(1, keepAlive);
    assert.deepEqual(other.changes.map((e) => [e.group, e.value]), [["c", timer(2)]]);
  } finally {
    await reader.stop();
    await output.close();
  }
});

Deno.test("ChangelogReader: a changelog record that is not JSON is skipped, the partition's other state restored", async () => {
  const n = uniqueNames("changelog-bad");
  const topic = `${n.group}-state-changelog`;
  await createTopics([topic], 1);
  const output = new KafkaOutput(kafka());
  const reader = new ChangelogReader(kafka(), topic, n.group, logger);
  try {
    await output.send([
      ...changelogRecords(topic, 0, [{ kind: "deadman", rule: "silent", group: "a", value: timer(1) }], null),
      { topic, partition: 0, key: "dm\u0000silent\u0000b", value: "{not json" },
      { topic, partition: 0, key: "ids", value: "[truncated" },
    ]);
    await reader.start();
    const snapshot = await reader.snapshot(0, keepAlive);
    assert.deepEqual(snapshot.changes.map((e) => [e.group, e.value]), [["a", timer(1)]]);
    assert.deepEqual(snapshot.recentIds, []);
  } finally {
    await reader.stop();
    await output.close();
  }
});

Deno.test("ChangelogReader: a group with a NUL in it (a group_by value from metadata) is restored, none left out", async () => {
  const n = uniqueNames("changelog-nul");
  const topic = `${n.group}-state-changelog`;
  await createTopics([topic], 1);
  const output = new KafkaOutput(kafka());
  const errors: string[] = [];
  const reader = new ChangelogReader(
    kafka(),
    topic,
    n.group,
    createLogger({ level: "error", sink: { write: (line) => errors.push(line), pretty: false } }),
  );
  const groups = ["evil\u0000x", "plain", "\u0000"];
  try {
    await output.send(
      changelogRecords(
        topic,
        0,
        groups.map((group, i) => ({ kind: "deadman", rule: "silent", group, value: timer(i) })),
        null,
      ),
    );
    await reader.start();
    const snapshot = await reader.snapshot(0, keepAlive);
    // Before: 3 records on the topic, 1 restored, 0 errors.
    assert.deepEqual(
      snapshot.changes.map((e) => [e.group, e.value]).sort(),
      groups.map((g, i) => [g, timer(i)]).sort(),
    );
    assert.deepEqual(errors, []);
  } finally {
    await reader.stop();
    await output.close();
  }
});
