import assert from "node:assert/strict";
import { Partitioners } from "kafkajs";
import { partitionOf } from "../../../src/transport/partitioner.ts";
import { createTopics, kafka, uniqueNames } from "../../helpers/kafka.ts";

Deno.test("partitionOf() puts a key where the broker got it from kafkajs's default partitioner", async () => {
  const n = uniqueNames("partitioner");
  await createTopics([n.events], 7);
  const keys = Array.from({ length: 50 }, (_, i) => `temperature:sensor-${i}`);
  const producer = kafka().producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  try {
    await producer.send({ topic: n.events, acks: -1, messages: keys.map((key) => ({ key, value: key })) });
  } finally {
    await producer.disconnect();
  }
  const consumer = kafka().consumer({ groupId: `${n.group}-read` });
  const where = new Map<string, number>();
  await consumer.connect();
  await consumer.subscribe({ topics: [n.events], fromBeginning: true });
  await consumer.run({
    eachMessage: ({ partition, message }) => {
      where.set(message.key!.toString(), partition);
      return Promise.resolve();
    },
  });
  for (let i = 0; i < 300 && where.size < keys.length; i++) await new Promise((r) => setTimeout(r, 100));
  await consumer.disconnect();
  assert.equal(where.size, keys.length);
  for (const key of keys) assert.equal(partitionOf(key, 7), where.get(key), key);
});
