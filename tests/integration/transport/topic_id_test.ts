/**
 * Topic ids read over kafkajs's connection (src/transport/topic_id.ts, our own Metadata v12) against
 * @platformatic/kafka's admin, a well-kept client that speaks the same version, on the real broker.
 */
import assert from "node:assert/strict";
import { Admin } from "@platformatic/kafka";
import { Kafka, logLevel } from "kafkajs";
import { topicIds } from "../../../src/transport/topic_id.ts";
import { brokers, createTopics, kafka, recreateTopic, uniqueNames } from "../../helpers/kafka.ts";

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

    await recreateTopic(topic, 2);
    const second = await ids.read(topic);
    assert.notEqual(second, null);
    assert.notEqual(second, first);
    assert.equal(second, await libraryId(topic));

    assert.equal(await ids.read(`${topic}-never-created`), null);
  } finally {
    await ids.close();
  }
});

/** A TCP proxy on 127.0.0.1 to `target` whose open connections the test can cut (a broker restart, seen from the client). */
function cuttableProxy(target: string): { address: string; cut(): void; close(): void } {
  const [hostname, port] = target.split(":") as [string, string];
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const open = new Set<Deno.Conn>();
  (async () => {
    for await (const client of listener) {
      const upstream = await Deno.connect({ hostname, port: Number(port) });
      open.add(client).add(upstream);
      const end = () => {
        for (const c of [client, upstream]) {
          open.delete(c);
          try {
            c.close();
          } catch { /* closed already */ }
        }
      };
      client.readable.pipeTo(upstream.writable).catch(() => {}).finally(end);
      upstream.readable.pipeTo(client.writable).catch(() => {}).finally(end);
    }
  })().catch(() => {});
  return {
    address: `127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    cut() {
      for (const c of [...open]) {
        open.delete(c);
        try {
          c.close();
        } catch { /* closed already */ }
      }
    },
    close() {
      this.cut();
      listener.close();
    },
  };
}

/** kafkajs's connection pool connects again on its own; a broker restart must not end the checks for good. */
Deno.test("topic ids: a read after the connection was cut connects again", async () => {
  const topic = uniqueNames("topic-id-cut").events;
  await createTopics([topic], 1);
  // The seed connection, which ids are read over, goes through the proxy.
  const proxy = cuttableProxy(brokers()[0]!);
  const ids = topicIds(
    new Kafka({ clientId: "tests", brokers: [proxy.address], logLevel: logLevel.NOTHING }),
  )!;
  try {
    const id = await ids.read(topic);
    assert.notEqual(id, null);
    proxy.cut();
    // The read that finds the connection closed may fail; a later one must succeed.
    let again: string | null | Error = new Error("not read");
    for (let attempt = 0; attempt < 5 && again instanceof Error; attempt++) {
      again = await ids.read(topic).catch((err: Error) => err);
    }
    assert.equal(again, id);
  } finally {
    await ids.close();
    proxy.close();
  }
});
