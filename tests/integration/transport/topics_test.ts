/**
 * The cluster's topics checked against what the service needs, on the real broker: an operator's
 * change is followed or refused with the fix, never passed over in silence.
 */
import assert from "node:assert/strict";
import { ConfigResourceTypes } from "kafkajs";
import {
  partitionCounts,
  prepareTopics,
  type TopicLayout,
  TopicLayoutError,
} from "../../../src/transport/topics.ts";
import { captureLogger } from "../../helpers/notifiers.ts";
import { createCompactedTopic, createTopics, uniqueNames, withAdmin } from "../../helpers/kafka.ts";

function layout(n: ReturnType<typeof uniqueNames>, extra: Partial<TopicLayout> = {}): TopicLayout {
  return {
    events: n.events,
    alerts: n.alerts,
    dlq: n.dlq,
    aggregates: n.aggregates,
    state: `${n.group}-state-changelog`,
    partitions: 3,
    engineGroup: n.group,
    acceptEmptyState: false,
    ...extra,
  };
}

Deno.test("prepareTopics() creates the changelog with the input topic's partition count and warns about SENSOR_PARTITIONS", async () => {
  const n = uniqueNames("topics-create");
  await createTopics([n.events], 4);
  const { logger, lines } = captureLogger();
  const partitions = await withAdmin((admin) => prepareTopics(admin, layout(n), logger));
  assert.equal(partitions, 4);
  const counts = await withAdmin((admin) => partitionCounts(admin, [`${n.group}-state-changelog`]));
  assert.equal(counts.get(`${n.group}-state-changelog`), 4);
  assert.ok(lines.some((l) => l.includes("SENSOR_PARTITIONS=4")), lines.join("\n"));
});

Deno.test("prepareTopics() refuses to start when the changelog is gone but the group committed offsets", async () => {
  const n = uniqueNames("topics-gone");
  const l = layout(n);
  await withAdmin(async (admin) => {
    await prepareTopics(admin, l, captureLogger().logger);
    await admin.setOffsets({
      groupId: n.group,
      topic: n.events,
      partitions: [{ partition: 0, offset: "5" }],
    });
    await admin.deleteTopics({ topics: [l.state!] });
  });
  // Deletion completes asynchronously on the broker.
  for (let i = 0; i < 100 && (await withAdmin((a) => a.listTopics())).includes(l.state!); i++) {
    await new Promise((r) => setTimeout(r, 100));
  }
  await assert.rejects(
    withAdmin((admin) => prepareTopics(admin, l, captureLogger().logger)),
    (err: Error) =>
      err instanceof TopicLayoutError && err.message.includes(`"${l.state}" is missing`) &&
      err.message.includes("--accept-empty-state"),
  );
  assert.ok(!(await withAdmin((a) => a.listTopics())).includes(l.state!), "not recreated empty");
  const { logger, lines } = captureLogger();
  await withAdmin((admin) => prepareTopics(admin, { ...l, acceptEmptyState: true }, logger));
  assert.ok((await withAdmin((a) => a.listTopics())).includes(l.state!));
  assert.ok(lines.some((line) => line.includes("Starting from empty state")), lines.join("\n"));
});

Deno.test("prepareTopics() starts a new group without a changelog quietly", async () => {
  const n = uniqueNames("topics-new");
  const { logger, lines } = captureLogger();
  await withAdmin((admin) => prepareTopics(admin, layout(n), logger));
  assert.equal(lines.filter((l) => l.includes("empty state")).length, 0);
});

Deno.test("prepareTopics() extends a changelog that has fewer partitions than the input topic", async () => {
  const n = uniqueNames("topics-grow");
  const l = layout(n);
  await withAdmin((admin) => prepareTopics(admin, l, captureLogger().logger));
  await withAdmin((admin) => admin.createPartitions({ topicPartitions: [{ topic: n.events, count: 6 }] }));
  const { logger, lines } = captureLogger();
  assert.equal(await withAdmin((admin) => prepareTopics(admin, l, logger)), 6);
  assert.equal((await withAdmin((a) => partitionCounts(a, [l.state!]))).get(l.state!), 6);
  assert.ok(lines.some((line) => line.includes("extending the state changelog")), lines.join("\n"));
});

Deno.test("prepareTopics() refuses a changelog with more partitions than the input topic", async () => {
  const n = uniqueNames("topics-shrunk");
  const l = layout(n);
  await createTopics([n.events], 2);
  await createCompactedTopic(l.state!, 5);
  await assert.rejects(
    withAdmin((admin) => prepareTopics(admin, l, captureLogger().logger)),
    (err: Error) => err instanceof TopicLayoutError && /has 5 partitions but .* has 2/.test(err.message),
  );
});

Deno.test("prepareTopics() refuses a compacted alerts topic and names the fix", async () => {
  const n = uniqueNames("topics-compact");
  await createCompactedTopic(n.alerts, 3);
  await assert.rejects(
    withAdmin((admin) => prepareTopics(admin, layout(n, { state: null }), captureLogger().logger)),
    (err: Error) => err instanceof TopicLayoutError && err.message.includes("cleanup.policy=delete"),
  );
  // The same topic with delete is fine.
  await withAdmin((admin) =>
    admin.alterConfigs({
      validateOnly: false,
      resources: [{
        type: ConfigResourceTypes.TOPIC,
        name: n.alerts,
        configEntries: [{ name: "cleanup.policy", value: "delete" }],
      }],
    })
  );
  await withAdmin((admin) => prepareTopics(admin, layout(n, { state: null }), captureLogger().logger));
});

/** Creates `topic` with `config` (kafkajs's createTopics). */
function createWith(topic: string, partitions: number, config: Record<string, string>): Promise<void> {
  return withAdmin(async (admin) => {
    await admin.createTopics({
      waitForLeaders: true,
      topics: [{
        topic,
        numPartitions: partitions,
        configEntries: Object.entries(config).map(([name, value]) => ({ name, value })),
      }],
    });
  });
}

/** What a topic made by an operator's tooling with the cluster's defaults (delete, 7 days) looks like. */
const RETENTION_CASES: [string, Record<string, string>, boolean][] = [
  ["cleanup.policy=delete (the cluster's default, 7 days)", { "cleanup.policy": "delete" }, false],
  ["compact,delete with retention.ms of a day", {
    "cleanup.policy": "compact,delete",
    "retention.ms": "86400000",
  }, false],
  ["compact,delete with retention.bytes", {
    "cleanup.policy": "compact,delete",
    "retention.ms": "-1",
    "retention.bytes": "1048576",
  }, false],
  ["compact,delete keeping everything", {
    "cleanup.policy": "compact,delete",
    "retention.ms": "-1",
    "retention.bytes": "-1",
  }, true],
  ["compact", { "cleanup.policy": "compact" }, true],
];

for (const [what, config, fine] of RETENTION_CASES) {
  Deno.test(`prepareTopics() ${fine ? "takes" : "refuses, naming the fix,"} a changelog and a silences topic with ${what}`, async () => {
    for (const kept of ["state", "silences"] as const) {
      const n = uniqueNames(`topics-retention-${kept}`);
      await createTopics([n.events], 2);
      const topic = kept === "state" ? `${n.group}-state-changelog` : `${n.group}-silences`;
      await createWith(topic, kept === "state" ? 2 : 1, config);
      const l = layout(n, kept === "state" ? {} : { state: null, silences: topic });
      const prepared = withAdmin((admin) => prepareTopics(admin, l, captureLogger().logger));
      if (fine) {
        await prepared;
        continue;
      }
      await assert.rejects(prepared, (err: Error) => {
        assert.ok(err instanceof TopicLayoutError, String(err));
        assert.ok(err.message.includes(`"${topic}"`), err.message);
        assert.match(err.message, /deletes? (records|state|silences)/, err.message);
        assert.match(
          err.message,
          /kafka-configs\.sh --alter --entity-type topics --entity-name/,
          err.message,
        );
        return true;
      });
    }
  });
}

Deno.test("prepareTopics() creates the silences topic stamped by the broker, and names the fix for one stamped by its writers' clocks", async () => {
  const n = uniqueNames("topics-silences");
  const stamping = (topic: string) =>
    withAdmin(async (admin) => {
      const { resources } = await admin.describeConfigs({
        includeSynonyms: false,
        resources: [{
          type: ConfigResourceTypes.TOPIC,
          name: topic,
          configNames: ["message.timestamp.type"],
        }],
      });
      return resources[0]?.configEntries.find((e) => e.configName === "message.timestamp.type")?.configValue;
    });
  const made = captureLogger();
  await withAdmin((admin) =>
    prepareTopics(admin, layout(n, { silences: `${n.events}.silences` }), made.logger)
  );
  assert.equal(await stamping(`${n.events}.silences`), "LogAppendTime");
  assert.deepEqual(made.lines.filter((l) => l.includes("writers' clocks")), []);

  // One made by hand (or by a version before) with the broker's default, CreateTime.
  await createCompactedTopic(`${n.events}.by-hand`, 1);
  const found = captureLogger();
  await withAdmin((admin) =>
    prepareTopics(admin, layout(n, { silences: `${n.events}.by-hand` }), found.logger)
  );
  const warned = found.lines.filter((l) => l.includes("writers' clocks"));
  assert.equal(warned.length, 1, found.lines.join("\n"));
  assert.ok(warned[0]!.includes("--add-config message.timestamp.type=LogAppendTime"), warned[0]);
});
