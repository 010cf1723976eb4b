/**
 * The silences topic: compacted, keyed by silence id, one partition (silences are few and every
 * instance reads them all). Each process reads it from the beginning in a consumer group of its own
 * that never commits, so every instance sees every silence; such a group holds no offsets and the
 * broker drops it once the process leaves.
 *
 * A topic deleted (and created again) under a running instance is noticed by a periodic look at its
 * offsets: the consumer kept its old position, so it skipped as many records of the new topic as the
 * old one had (a silence written on another instance never held here), and a restart would have lost
 * every silence. The instance then writes back the silences it knows and reads the topic again.
 *
 * @module
 */
import type { Kafka } from "kafkajs";
import type { Logger } from "../../log.ts";
import { ensureTopics, errorTypes, kafkaProblem } from "../../transport/kafka.ts";
import { silencesTopic } from "../../transport/topics.ts";
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
  /** How often the topic is looked at for having been deleted or created again (default 10 s). */
  watchMs?: number;
}

type Apply = (id: string, silence: unknown) => void;

export class KafkaSilenceLog implements SilenceLog {
  readonly #opts: KafkaSilenceLogOptions;
  #consumer: ReturnType<Kafka["consumer"]> | null = null;
  #apply: Apply = () => {};
  /** The newest record of each id read or written: what is written back to a topic created again. */
  readonly #latest = new Map<string, string>();
  /** The next offset to read, per partition. */
  readonly #position = new Map<number, number>();
  #watch: ReturnType<typeof setInterval> | undefined;
  #checking: Promise<void> | null = null;
  /** The topic was deleted (and perhaps created again) since it was read: write back, read again. */
  #lost = false;
  /** The topic is missing now (logged once). */
  #gone = false;
  #closed = false;

  constructor(opts: KafkaSilenceLogOptions) {
    this.#opts = opts;
  }

  async start(apply: Apply): Promise<void> {
    this.#apply = apply;
    await this.#read();
    this.#watch = setInterval(() => {
      this.#checking ??= this.#check()
        .catch((error) =>
          this.#opts.logger.warn("Cannot look at the silences topic", {
            topic: this.#opts.topic,
            error: kafkaProblem(error),
          })
        )
        .finally(() => this.#checking = null);
    }, this.#opts.watchMs ?? 10_000);
  }

  /** Reads the topic from its beginning with a new consumer; resolves once up to the ends found. */
  async #read(): Promise<void> {
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
      // Its metadata requests would otherwise create a deleted topic again, uncompacted.
      allowAutoTopicCreation: false,
    });
    this.#consumer = consumer;
    try {
      await this.#follow(consumer, ends, caughtUp);
    } catch (err) {
      // Tried again by the caller with a new consumer: this one must not stay in a group.
      await consumer.disconnect().catch(() => {});
      throw err;
    }
    await loaded;
  }

  async #follow(
    consumer: ReturnType<Kafka["consumer"]>,
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
        // This consumer never goes back: a lower offset is a topic created again (kafkajs moved
        // to its start, the old position being out of its range).
        if (Number(batch.firstOffset()) < (this.#position.get(batch.partition) ?? 0)) this.#lost = true;
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
            const text = decoder.decode(m.value);
            this.#latest.set(id, text);
            try {
              value = JSON.parse(text);
            } catch {
              value = { not_json: true };
            }
          } else {
            this.#latest.delete(id);
          }
          this.#apply(id, value);
        }
        const next = Number(batch.lastOffset()) + 1;
        this.#position.set(batch.partition, Math.max(next, this.#position.get(batch.partition) ?? 0));
        const end = ends.get(batch.partition);
        if (end !== undefined && next >= end) {
          ends.delete(batch.partition);
          if (ends.size === 0) caughtUp();
        }
        return Promise.resolve();
      },
    });
  }

  /**
   * Notices a topic deleted (and creates it again, compacted), or created again with fewer records
   * than were read; then writes back the silences this instance knows and reads the topic anew.
   */
  async #check(): Promise<void> {
    const { kafka, topic, logger } = this.#opts;
    const admin = kafka.admin();
    await admin.connect();
    try {
      let offsets: { partition: number; high: string }[];
      try {
        // Listed first: for a missing topic, fetchTopicOffsets retries for half a minute.
        if (!(await admin.listTopics()).includes(topic)) throw new MissingTopic();
        offsets = await admin.fetchTopicOffsets(topic);
      } catch (err) {
        if (!(err instanceof MissingTopic) && !errorTypes(err).includes("UNKNOWN_TOPIC_OR_PARTITION")) {
          throw err;
        }
        this.#lost = true;
        if (!this.#gone) {
          logger.error(
            "The silences topic is gone: creating it again with the silences this instance knows",
            {
              topic,
              silences: this.#latest.size,
            },
          );
        }
        this.#gone = true;
        // Else the first write would create it with the broker's defaults: not compacted, so its
        // silences would be deleted after the retention time.
        await ensureTopics(admin, [silencesTopic(topic)]);
        offsets = [];
      }
      this.#gone = false;
      const behind = offsets.some((o) => Number(o.high) < (this.#position.get(o.partition) ?? 0));
      if ((!this.#lost && !behind) || this.#closed) return;
    } finally {
      await admin.disconnect().catch(() => {});
    }
    logger.warn(
      "The silences topic was deleted or created again: writing back the silences this instance knows",
      {
        topic,
        silences: this.#latest.size,
      },
    );
    await this.#consumer?.disconnect().catch(() => {});
    this.#consumer = null;
    this.#position.clear();
    await this.#opts.output.send([...this.#latest].map(([key, value]) => ({ topic, key, value })));
    if (this.#closed) return;
    await this.#read();
    // Only now: a failure above leaves it to the next look, which starts over.
    this.#lost = false;
  }

  async write(id: string, silence: Silence | null): Promise<void> {
    const value = silence === null ? null : JSON.stringify(silence);
    await this.#opts.output.send([{ topic: this.#opts.topic, key: id, value }]);
    if (value === null) this.#latest.delete(id);
    else this.#latest.set(id, value);
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#watch);
    await this.#checking;
    await this.#consumer?.disconnect().catch(() => {});
  }
}

class MissingTopic extends Error {}
