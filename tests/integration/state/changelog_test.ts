/**
 * The changelog reader against the real broker: a partition's snapshot has its newest records, and
 * a partition handed over to the engine (no longer followed) is read anew when it is restored again.
 */
import assert from "node:assert/strict";
import { createLogger } from "../../../src/log.ts";
import { emptyOutput, type RuleEngine } from "../../../src/rules/engine.ts";
import { percentile } from "../../../src/rules/windows.ts";
import { ChangelogReader } from "../../../src/state/changelog.ts";
import { changelogRecords } from "../../../src/state/format.ts";
import { KafkaOutput } from "../../../src/transport/kafka.ts";
import { engine, ev, T0 } from "../../helpers/engine.ts";
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

Deno.test("ChangelogReader: a p95 window of 70,000 values (past its exact values) restores from the broker with its p95", async () => {
  // Before: every value was checkpointed, a record of 1,144,322 bytes the broker refused (max.message.bytes
  // 1,048,588 by default).
  const rules = `rules:
  - id: busy-p95
    sensor_type: temperature
    window: { type: tumbling, size: 1h }
    group_by: location
    condition: { ">": [{ var: p95 }, 1e12] }
    publish: true
    priority: low
`;
  const n = uniqueNames("changelog-p95");
  const topic = `${n.group}-state-changelog`;
  await createTopics([topic], 1);
  const output = new KafkaOutput(kafka());
  const reader = new ChangelogReader(kafka(), topic, n.group, logger);
  const first = engine(rules);
  first.trackChanges();
  const values = Array.from({ length: 70_000 }, (_, i) => 1000 + ((i * 7919) % 70_001) / 7);
  const out = emptyOutput();
  values.forEach((v, i) => first.onEvent(ev("t-1", v), T0 + i * 50, out));
  const close = (e: RuleEngine, o = emptyOutput()) => {
    e.onEvent(ev("t-1", 20), T0 + 3_600_000, o);
    assert.equal(o.aggregates.length, 1);
    return o.aggregates[0]! as Record<string, unknown>;
  };
  try {
    const failed: string[] = [];
    await output.send(changelogRecords(topic, 0, first.takeChanges(), null, (c) => failed.push(c.group)));
    assert.deepEqual(failed, []);
    await reader.start();
    const snapshot = await reader.snapshot(0, keepAlive);
    const second = engine(rules);
    assert.equal(second.importState(snapshot.changes), 1);
    const restored = close(second);
    assert.equal(restored.count, 70_000);
    assert.equal(restored.p95, close(first, out).p95);
    const exact = percentile(values, 0.95);
    assert.ok(Math.abs((restored.p95 as number) - exact) <= 0.01 * exact, `${restored.p95} against ${exact}`);
  } finally {
    await reader.stop();
    await output.close();
  }
});
