/**
 * The silences topic: compacted, keyed by silence id, one partition (silences are few and every
 * instance reads them all). Each process reads it from the beginning in a consumer group of its own
 * that never commits, so every instance sees every silence; such a group holds no offsets and the
 * broker drops it once the process leaves.
 *
 * @module
 */
import type { Kafka } from "kafkajs";
import type { Logger } from "../../log.ts";
import type { Output } from "../../transport/output.ts";
import type { Silence } from "./silence.ts";
import type { SilenceLog } from "./store.ts";

export interface KafkaSilenceLogOptions {
  kafka: Kafka;
  topic: string;
  /** Where silences are written (the service's plain, non-transactional output). */
  output: Output;
  /** Prefix of this process's own consumer group. */
  groupPrefix: string;
  logger: Logger;
}

export class KafkaSilenceLog implements SilenceLog {
  readonly #opts: KafkaSilenceLogOptions;
  #consumer: ReturnType<Kafka["consumer"]> | null = null;

  constructor(opts: KafkaSilenceLogOptions) {
    this.#opts = opts;
  }

  async start(apply: (id: string, silence: unknown) => void): Promise<void> {
    const { kafka, topic } = this.#opts;
    const admin = kafka.admin();
    await admin.connect();
    let ends: Map<number, number>;
    try {
      ends = new Map(
        (await admin.fetchTopicOffsets(topic))
          .filter((p) => Number(p.high) > Number(p.low))
          .map((p) => [p.partition, Number(p.high)]),
      );
    } finally {
      await admin.disconnect().catch(() => {});
    }
    let caughtUp!: () => void;
    const loaded = new Promise<void>((resolve) => caughtUp = resolve);
    if (ends.size === 0) caughtUp();
    const consumer = kafka.consumer({
      groupId: `${this.#opts.groupPrefix}-${crypto.randomUUID()}`,
      maxWaitTimeInMs: 250,
    });
    this.#consumer = consumer;
    try {
      await this.#follow(consumer, apply, ends, caughtUp);
    } catch (err) {
      // Tried again by the caller with a new consumer: this one must not stay in a group.
      await consumer.disconnect().catch(() => {});
      throw err;
    }
    await loaded;
  }

  async #follow(
    consumer: ReturnType<Kafka["consumer"]>,
    apply: (id: string, silence: unknown) => void,
    ends: Map<number, number>,
    caughtUp: () => void,
  ): Promise<void> {
    const { topic, logger } = this.#opts;
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    const decoder = new TextDecoder();
    await consumer.run({
      autoCommit: false,
      eachBatch: ({ batch }) => {
        for (const m of batch.messages) {
          const id = m.key === null ? null : decoder.decode(m.key);
          if (id === null) {
            logger.warn("Skipping a silence record without a key", {
              partition: batch.partition,
              offset: m.offset,
            });
            continue;
          }
          let value: unknown = null;
          if (m.value !== null) {
            try {
              value = JSON.parse(decoder.decode(m.value));
            } catch {
              value = { not_json: true };
            }
          }
          apply(id, value);
        }
        const end = ends.get(batch.partition);
        if (end !== undefined && Number(batch.lastOffset()) + 1 >= end) {
          ends.delete(batch.partition);
          if (ends.size === 0) caughtUp();
        }
        return Promise.resolve();
      },
    });
  }

  write(id: string, silence: Silence | null): Promise<void> {
    return this.#opts.output.send([{
      topic: this.#opts.topic,
      key: id,
      value: silence === null ? null : JSON.stringify(silence),
    }]);
  }

  async close(): Promise<void> {
    await this.#consumer?.disconnect().catch(() => {});
  }
}
