/**
 * The silences topic: compacted, keyed by silence id, one partition (silences are few and every
 * instance reads them all). Each process reads it from the beginning in a consumer group of its own
 * that never commits, so every instance sees every silence; such a group holds no offsets and the
 * broker drops it once the process leaves. The alerts silences hold share the topic under keys of
 * their own (`held/` and the alert id), each key space read by a follower of its own (`accept`).
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
  /** The keys this log reads; others are skipped. */
  accept: (key: string) => boolean;
}

export class KafkaSilenceLog<T = Silence> implements SilenceLog<T> {
  readonly #opts: KafkaSilenceLogOptions;
  #consumer: ReturnType<Kafka["consumer"]> | null = null;
  /** Per partition, the offset after the last record applied. */
  readonly #applied = new Map<number, number>();
  #waiters: { ends: Map<number, number>; resolve: () => void }[] = [];

  constructor(opts: KafkaSilenceLogOptions) {
    this.#opts = opts;
  }

  async start(apply: (id: string, record: unknown) => void): Promise<void> {
    const ends = await this.#ends();
    let caughtUp!: () => void;
    const loaded = new Promise<void>((resolve) => caughtUp = resolve);
    if (ends.size === 0) caughtUp();
    const consumer = this.#opts.kafka.consumer({
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

  /** The end offset of each partition that holds records. */
  async #ends(): Promise<Map<number, number>> {
    const admin = this.#opts.kafka.admin();
    await admin.connect();
    try {
      return new Map(
        (await admin.fetchTopicOffsets(this.#opts.topic))
          .filter((p) => Number(p.high) > Number(p.low))
          .map((p) => [p.partition, Number(p.high)]),
      );
    } finally {
      await admin.disconnect().catch(() => {});
    }
  }

  async caughtUp(): Promise<void> {
    const ends = await this.#ends();
    for (const [p, end] of ends) if ((this.#applied.get(p) ?? 0) >= end) ends.delete(p);
    if (ends.size === 0) return;
    await new Promise<void>((resolve) => this.#waiters.push({ ends, resolve }));
  }

  async #follow(
    consumer: ReturnType<Kafka["consumer"]>,
    apply: (id: string, record: unknown) => void,
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
          if (!this.#opts.accept(id)) continue;
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
        const next = Number(batch.lastOffset()) + 1;
        this.#applied.set(batch.partition, next);
        const end = ends.get(batch.partition);
        if (end !== undefined && next >= end) {
          ends.delete(batch.partition);
          if (ends.size === 0) caughtUp();
        }
        if (this.#waiters.length > 0) this.#wake(batch.partition, next);
        return Promise.resolve();
      },
    });
  }

  #wake(partition: number, next: number): void {
    for (const w of this.#waiters) {
      const end = w.ends.get(partition);
      if (end !== undefined && next >= end) w.ends.delete(partition);
    }
    const done = this.#waiters.filter((w) => w.ends.size === 0);
    if (done.length === 0) return;
    this.#waiters = this.#waiters.filter((w) => w.ends.size > 0);
    for (const w of done) w.resolve();
  }

  write(id: string, record: T | null): Promise<void> {
    return this.#opts.output.send([{
      topic: this.#opts.topic,
      key: id,
      value: record === null ? null : JSON.stringify(record),
    }]);
  }

  async close(): Promise<void> {
    await this.#consumer?.disconnect().catch(() => {});
    // Nothing will be applied any more: whoever waits is let go rather than left hanging.
    for (const w of this.#waiters.splice(0)) w.resolve();
  }
}
