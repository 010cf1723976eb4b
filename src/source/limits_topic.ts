/**
 * Follows a compacted topic of per-sensor limits (LIMITS_TOPIC) from its start: each record (key: a
 * sensor id) handed on with the batch it was fetched in. The records' meaning is the rules'
 * (src/rules/limits.ts); this reads them.
 *
 * @module
 */
import type { Consumer, Kafka } from "kafkajs";
import type { Logger } from "../log.ts";
import { METADATA_MAX_AGE_MS } from "./kafka.ts";

/** A record as read (a null value is a tombstone): its meaning is src/rules/limits.ts's. */
export interface LimitsRecord {
  key: string;
  value: Uint8Array | null;
  partition: number;
  offset: string;
}

/**
 * A consumer in a group of its own that never commits (kafkajs has no manual assignment), so every
 * instance reads the whole topic. Each fetched batch's records go to `onRecords` as they arrive, once
 * each: nothing is kept here (the whole topic's values were, and all of them were handed on again,
 * to be parsed again, every 250 ms while records arrived).
 */
export class LimitsTopicFollower {
  readonly #kafka: Kafka;
  readonly #topic: string;
  readonly #logger: Logger;
  readonly #groupId: string;
  readonly #position = new Map<number, number>();
  readonly #onRecords: (records: readonly LimitsRecord[]) => void;
  #consumer: Consumer | null = null;
  /** Records handed on since start. */
  records = 0;

  constructor(
    kafka: Kafka,
    topic: string,
    groupPrefix: string,
    logger: Logger,
    onRecords: (records: readonly LimitsRecord[]) => void,
  ) {
    this.#kafka = kafka;
    this.#topic = topic;
    this.#logger = logger;
    this.#groupId = `${groupPrefix}.limits-reader.${crypto.randomUUID()}`;
    this.#onRecords = onRecords;
  }

  /** Starts following; resolves once every record written before the call has been handed on. */
  async start(timeoutMs = 60_000): Promise<void> {
    const admin = this.#kafka.admin();
    await admin.connect();
    let ends: { partition: number; high: string }[];
    try {
      ends = await admin.fetchTopicOffsets(this.#topic);
    } finally {
      await admin.disconnect();
    }
    const consumer = this.#consumer = this.#kafka.consumer({
      groupId: this.#groupId,
      allowAutoTopicCreation: false,
      maxWaitTimeInMs: 100,
      metadataMaxAge: METADATA_MAX_AGE_MS,
    });
    // Batches of only transaction markers never reach eachBatch, but they move the position.
    consumer.on(consumer.events.END_BATCH_PROCESS, (e) => {
      const { partition, lastOffset } = e.payload as { partition: number; lastOffset: string };
      const next = Number(lastOffset) + 1;
      if (next > (this.#position.get(partition) ?? 0)) this.#position.set(partition, next);
    });
    await consumer.connect();
    await consumer.subscribe({ topics: [this.#topic], fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: ({ batch }) => {
        const records: LimitsRecord[] = [];
        for (const m of batch.messages) {
          const key = m.key?.toString("utf8");
          if (key === undefined || key === "") continue;
          records.push({ key, value: m.value, partition: batch.partition, offset: m.offset });
        }
        if (records.length > 0) {
          this.records += records.length;
          this.#onRecords(records);
        }
        const last = batch.messages.at(-1);
        if (last !== undefined && Number(last.offset) + 1 > (this.#position.get(batch.partition) ?? 0)) {
          this.#position.set(batch.partition, Number(last.offset) + 1);
        }
        return Promise.resolve();
      },
    });
    const started = Date.now();
    const behind = () => ends.some((e) => (this.#position.get(e.partition) ?? 0) < Number(e.high));
    while (behind()) {
      if (Date.now() - started > timeoutMs) {
        throw new Error(`Cannot read the limits topic "${this.#topic}" to its end within ${timeoutMs} ms`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    this.#logger.info("Limits topic read", { topic: this.#topic, records: this.records });
  }

  async stop(): Promise<void> {
    await this.#consumer?.disconnect();
  }
}
