/**
 * Topic ids read over kafkajs's connection (src/transport/topic_id.ts, our own Metadata v12) against
 * @platformatic/kafka's admin, a well-kept client that speaks the same version, on the real broker.
 */
import assert from "node:assert/strict";
import { Admin } from "@platformatic/kafka";
import { topicIds } from "../../../src/transport/topic_id.ts";
import { brokers, createTopics, kafka, uniqueNames, withAdmin } from "../../helpers/kafka.ts";

async function libraryId(topic: string): Promise<string | null> {
  const admin = new Admin({ clientId: "tests-topic-ids", bootstrapBrokers: brokers() });
  try {
    const meta = await admin.metadata({ topics: [topic], forceUpdate: true, autocreateTopics: false });
    return meta.topics.get(topic)?.id ?? null;
  } catch (err) {
    if (err instanceof Error && err.message === `Unknown topic ${topic}.`) return null;
    throw err;
  } finally {
    await admin.close();
  }
}

Deno.test("topic ids: the same as @platformatic/kafka's, a new one for a topic created again, null for none", async () => {
  const topic = uniqueNames("topic-id").events;
  await createTopics([topic], 2);
  const ids = topicIds(kafka());
  assert.ok(ids !== null, "kafkajs's cluster is reachable");
  try {
    const first = await ids.read(topic);
    assert.match(first ?? "", /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    assert.equal(first, await libraryId(topic));

    await withAdmin((admin) => admin.deleteTopics({ topics: [topic] }));
    // Deletion is asynchronous on the broker: the name is free again once it is done.
    for (let attempt = 0;; attempt++) {
      try {
        await createTopics([topic], 2);
        break;
      } catch (err) {
        if (attempt > 60) throw err;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
    const second = await ids.read(topic);
    assert.notEqual(second, null);
    assert.notEqual(second, first);
    assert.equal(second, await libraryId(topic));

    assert.equal(await ids.read(`${topic}-never-created`), null);
  } finally {
    await ids.close();
  }
});
