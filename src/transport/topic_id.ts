/**
 * A topic's id (KIP-516). A topic deleted and created again under the same name has a new one, and
 * that is the one way to tell it from the old: its offsets start again at 0, so a position kept on
 * the old topic points into the new one's records.
 *
 * kafkajs asks for metadata in version 6, which has no ids; this asks in version 12 over kafkajs's
 * own connection (its SASL, TLS and retries), with kafkajs's encoder and decoder. @platformatic/kafka
 * has ids too, but loading it reads the whole environment (its `debug` dependency) and a file from
 * Deno's cache, permissions `deno task start` does not grant. tests/integration/topic_id_test.ts
 * compares the ids read here with @platformatic/kafka's.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import type { Kafka } from "kafkajs";
import Decoder from "kafkajs/src/protocol/decoder.js";
import Encoder from "kafkajs/src/protocol/encoder.js";

/** Reads topic ids from the brokers of one client, over a connection of its own. */
export interface TopicIds {
  /** The topic's id now, or null when the broker has no such topic (deleted, not created yet). */
  read(topic: string): Promise<string | null>;
  close(): Promise<void>;
}

const METADATA = 3;
const VERSION = 12;
const UNKNOWN_TOPIC_OR_PARTITION = 3;
/** The all-zero id stands for "none" (a topic asked for by name). */
const NO_ID = Buffer.alloc(16);

interface KafkajsBroker {
  connectionPool: { send(protocol: { request: unknown; response: unknown }): Promise<unknown> };
}
interface KafkajsCluster {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  brokerPool: { seedBroker: KafkajsBroker | undefined };
}

/** kafkajs keeps its cluster factory behind a symbol: the one way to a connection that speaks its SASL and TLS. */
function clusterOf(kafka: Kafka): KafkajsCluster | null {
  const key = Object.getOwnPropertySymbols(kafka).find((s) =>
    s.description === "private:Kafka:createCluster"
  );
  if (key === undefined) return null;
  const create = (kafka as unknown as Record<symbol, (o: object) => KafkajsCluster>)[key]!;
  return create({ allowAutoTopicCreation: false, metadataMaxAge: 60_000 });
}

/**
 * Metadata v12 for one topic by name. The request header is kafkajs's v1 followed by an empty tag
 * buffer, which makes it the v2 header flexible versions have; the response header's tag buffer
 * comes first in what kafkajs hands the decoder.
 */
function metadataRequest(topic: string) {
  return {
    request: {
      apiKey: METADATA,
      apiVersion: VERSION,
      apiName: "Metadata",
      encode: () => {
        const e = new Encoder().writeUVarInt(0);
        e.writeUVarInt(2).writeBuffer(NO_ID).writeUVarIntString(topic).writeUVarInt(0);
        return Promise.resolve(e.writeBoolean(false).writeBoolean(false).writeUVarInt(0));
      },
    },
    response: {
      decode: (raw: Buffer) => Promise.resolve(decodeMetadata(raw)),
      parse: (data: MetadataTopic[]) => Promise.resolve(data),
    },
  };
}

export interface MetadataTopic {
  errorCode: number;
  name: string | null;
  /** The id as Kafka prints it (RFC 4122 form), or null for the all-zero id. */
  id: string | null;
}

/** The topics of a Metadata v12 response (brokers and partitions read past). */
export function decodeMetadata(raw: Buffer): MetadataTopic[] {
  const d = new Decoder(raw);
  d.readTaggedFields();
  d.readInt32(); // throttle_time_ms
  d.readUVarIntArray((b: Decoder) => {
    b.readInt32();
    b.readUVarIntString();
    b.readInt32();
    b.readUVarIntString();
    b.readTaggedFields();
  });
  d.readUVarIntString(); // cluster_id
  d.readInt32(); // controller_id
  const topics = d.readUVarIntArray((t: Decoder): MetadataTopic => {
    const errorCode = t.readInt16();
    const name = t.readUVarIntString();
    const id = t.readBytes(16) as Buffer;
    t.readBoolean(); // is_internal
    t.readUVarIntArray((p: Decoder) => {
      p.readInt16();
      p.readInt32();
      p.readInt32();
      p.readInt32();
      for (let i = 0; i < 3; i++) p.readUVarIntArray((n: Decoder) => n.readInt32());
      p.readTaggedFields();
    });
    t.readInt32(); // topic_authorized_operations
    t.readTaggedFields();
    return { errorCode, name, id: id.equals(NO_ID) ? null : formatId(id) };
  }) ?? [];
  return topics;
}

function formatId(id: Buffer): string {
  const h = id.toString("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** A reader of topic ids for `kafka`'s brokers (null when kafkajs's cluster cannot be reached into). */
export function topicIds(kafka: Kafka): TopicIds | null {
  const cluster = clusterOf(kafka);
  if (cluster === null) return null;
  let connected: Promise<void> | null = null;
  return {
    async read(topic) {
      connected ??= cluster.connect().catch((err) => {
        connected = null;
        throw err;
      });
      await connected;
      const broker = cluster.brokerPool.seedBroker;
      if (broker === undefined) throw new Error("No broker connected to read the topic's id from");
      const topics = await broker.connectionPool.send(metadataRequest(topic)) as MetadataTopic[];
      const found = topics.find((t) => t.name === topic);
      if (found === undefined || found.errorCode === UNKNOWN_TOPIC_OR_PARTITION) return null;
      if (found.errorCode !== 0) {
        throw new Error(`Metadata of topic "${topic}": error code ${found.errorCode}`);
      }
      return found.id;
    },
    async close() {
      if (connected !== null) await connected.catch(() => {});
      await cluster.disconnect();
    },
  };
}
