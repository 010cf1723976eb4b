/**
 * The silences topic: compacted, keyed by silence id, one partition (silences are few and every
 * instance reads them all). Each process reads it from the beginning in a consumer group of its own
 * that never commits, so every instance sees every silence; such a group holds no offsets and the
 * broker drops it once the process leaves. The alerts silences hold share the topic under keys of
 * their own (`held/` and the alert id), each key space read by a follower of its own (`accept`).
 *
 * A topic deleted (and created again) under a running instance is noticed by a periodic look at it:
 * the consumer kept its old position, so it skipped as many records of the new topic as the old one
 * had (a silence written on another instance never held here), and a restart would have lost every
 * silence. A look tells a topic created again by its topic id, another than the one read. Where the
 * broker gives none, by its offsets (fewer records than were read) or, as the new topic may already
 * hold as many records as the old one did, by their timestamps: in the topic that was read, no
 * record before the position is newer than the newest read (which a writer whose clock runs behind
 * hides). Each follower then writes back the records of its key space it knows (silences, or held
 * alerts) and reads the topic again; each watches on its own, so both key spaces come back whichever
 * notices first.
 *
 * @module
 */
import type { Kafka } from "kafkajs";
import type { Logger } from "../../log.ts";
import { ensureTopics, errorTypes, kafkaProblem } from "../../transport/kafka.ts";
import { type TopicIds, topicIds } from "../../transport/topic_id.ts";
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
  /** The keys this log reads; others are skipped. */
  accept: (key: string) => boolean;
  /** What its records are, in its log lines (default "silences"). */
  what?: string;
  /** How often the topic is looked at for having been deleted or created again (default 10 s). */
  watchMs?: number;
}

type Apply = (id: string, record: unknown) => void;

export class KafkaSilenceLog<T = Silence> implements SilenceLog<T> {
  readonly #opts: KafkaSilenceLogOptions;
  #consumer: ReturnType<Kafka["consumer"]> | null = null;
  #apply: Apply = () => {};
  /** The newest record of each accepted key read or written: what is written back to a topic created again. */
  readonly #latest = new Map<string, string>();
  /** Per partition, the offset after the last record read (the highest: it never goes back). */
  readonly #position = new Map<number, number>();
  /** Per partition, the newest record timestamp read (of every key, accepted or not). */
  readonly #newest = new Map<number, number>();
  /** What was read when the topic was last found unchanged (or read anew): see `#newer`. */
  #seen: { read: Map<number, number>; newest: number } | null = null;
  #waiters: { ends: Map<number, number>; resolve: () => void }[] = [];
  #watch: ReturnType<typeof setInterval> | undefined;
  #checking: Promise<void> | null = null;
  /** The topic was deleted (and perhaps created again) since it was read: write back, read again. */
  #lost = false;
  /** Reads the topic's id (null: kafkajs's cluster cannot be reached into). */
  #ids: TopicIds | null = null;
  /** The id of the topic read (null: not known, the looks go by offsets and stamps). */
  #readId: string | null = null;
  /** The topic is missing now (logged once). */
  #gone = false;
  #closed = false;

  constructor(opts: KafkaSilenceLogOptions) {
    this.#opts = opts;
  }

  async start(apply: Apply): Promise<void> {
    this.#apply = apply;
    this.#ids ??= topicIds(this.#opts.kafka);
    try {
      await this.#read();
    } catch (err) {
      // A start is tried again (the broker not there yet): each try's reader held a connection.
      await this.#ids?.close().catch(() => {});
      this.#ids = null;
      throw err;
    }
    this.#seen = this.#whatWasRead();
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
    // Before the read: a topic created again meanwhile is read, and the next look reads it again.
    this.#readId = await this.#topicId();
    const ends = await this.#ends();
    let caughtUp!: () => void;
    const loaded = new Promise<void>((resolve) => caughtUp = resolve);
    if (ends.size === 0) caughtUp();
    const consumer = this.#opts.kafka.consumer({
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
    for (const [p, end] of ends) if ((this.#position.get(p) ?? 0) >= end) ends.delete(p);
    if (ends.size === 0) return;
    await new Promise<void>((resolve) => this.#waiters.push({ ends, resolve }));
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
        // Stamps of every record below the position, as the broker's lookup by timestamp sees them:
        // a transaction's markers and aborted records too (kafkajs keeps them from `messages`, but the
        // position goes past them), or a commit marker, stamped after its records, passed for a record
        // newer than every one read, at every look (a write-back and a new read each time).
        let newest = this.#newest.get(batch.partition) ?? -1;
        for (
          const m of (batch as unknown as { messagesWithinOffset?: { timestamp: string }[] })
            .messagesWithinOffset ?? []
        ) {
          newest = Math.max(newest, Number(m.timestamp));
        }
        for (const m of batch.messages) {
          newest = Math.max(newest, Number(m.timestamp));
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
        this.#newest.set(batch.partition, newest);
        const next = Number(batch.lastOffset()) + 1;
        this.#position.set(batch.partition, Math.max(next, this.#position.get(batch.partition) ?? 0));
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

  /**
   * Notices a topic deleted (and creates it again, compacted), or created again with fewer records
   * than were read; then writes back the records of this key space this instance knows and reads
   * the topic anew.
   */
  async #check(): Promise<void> {
    const { kafka, topic, logger } = this.#opts;
    const what = this.#opts.what ?? "silences";
    // No retries: a topic deleted between the listing and the offsets would have kept
    // fetchTopicOffsets retrying for half a minute, long enough for the topic to be created again
    // with as many records as were read, which no later look tells from the old one (the follower
    // then never read it: 1 run in 4 of tests/integration/notifiers/silences_hostile_test.ts).
    const admin = kafka.admin({ retry: { retries: 0 } });
    await admin.connect();
    try {
      let offsets: { partition: number; high: string }[];
      try {
        // Listed first: a missing topic is said at once.
        if (!(await admin.listTopics()).includes(topic)) throw new MissingTopic();
        offsets = await admin.fetchTopicOffsets(topic);
      } catch (err) {
        if (!(err instanceof MissingTopic) && !errorTypes(err).includes("UNKNOWN_TOPIC_OR_PARTITION")) {
          throw err;
        }
        this.#lost = true;
        if (!this.#gone) {
          logger.error(`The silences topic is gone: creating it again with the ${what} this instance knows`, {
            topic,
            records: this.#latest.size,
          });
        }
        this.#gone = true;
        // Else the first write would create it with the broker's defaults: not compacted, so its
        // records would be deleted after the retention time.
        await ensureTopics(admin, [silencesTopic(topic)]);
        offsets = [];
      }
      this.#gone = false;
      const id = this.#lost ? null : await this.#topicId();
      if (id !== null && this.#readId !== null) {
        this.#lost = id !== this.#readId;
        if (!this.#lost || this.#closed) return;
      } else {
        const behind = offsets.some((o) => Number(o.high) < (this.#position.get(o.partition) ?? 0));
        if (!this.#lost && !behind && !this.#closed) this.#lost = await this.#newer(admin);
        if ((!this.#lost && !behind) || this.#closed) return;
      }
    } finally {
      await admin.disconnect().catch(() => {});
    }
    logger.warn(
      `The silences topic was deleted or created again: writing back the ${what} this instance knows`,
      {
        topic,
        records: this.#latest.size,
      },
    );
    await this.#consumer?.disconnect().catch(() => {});
    this.#consumer = null;
    this.#position.clear();
    this.#newest.clear();
    this.#seen = null;
    await this.#opts.output.send([...this.#latest].map(([key, value]) => ({ topic, key, value })));
    if (this.#closed) return;
    await this.#read();
    this.#seen = this.#whatWasRead();
    // Read up to the new topic's end, found after they asked: whoever waits on the old one is done.
    for (const w of this.#waiters.splice(0)) w.resolve();
    // Only now: a failure above leaves it to the next look, which starts over.
    this.#lost = false;
  }

  /** The topic's id now; null when it is missing or the broker gives none (or cannot be asked). */
  async #topicId(): Promise<string | null> {
    try {
      return await this.#ids?.read(this.#opts.topic) ?? null;
    } catch (error) {
      this.#opts.logger.debug("Cannot read the silences topic's id: looking at its offsets", {
        topic: this.#opts.topic,
        error: kafkaProblem(error),
      });
      return null;
    }
  }

  /** What was read: per partition its position (when past 0), and the newest stamp below them. */
  #whatWasRead(): { read: Map<number, number>; newest: number } {
    // Both taken now: what the consumer reads meanwhile moves them together.
    const read = new Map([...this.#position].filter(([, next]) => next > 0));
    const newest = Math.max(-1, ...[...read.keys()].map((p) => this.#newest.get(p) ?? -1));
    return { read, newest };
  }

  /**
   * Whether a record newer than the newest read sits before the position: the topic was created
   * again and written to since it was read, with at least as many records as were read (otherwise
   * its offsets tell). Records are stamped when produced, so a silence written after the deletion is
   * newer than every record of the old topic; a clock set back could hide it, never invent one.
   *
   * Asked of what was read now and of what was read at the previous look: the consumer goes on at its
   * position in a topic created again, so once the new topic was written past it, the newest stamp
   * read is the new topic's, newer than the records it skipped (which then no look of what is read
   * now tells). What the previous look saw was read before the deletion, or that look told it.
   */
  async #newer(admin: ReturnType<Kafka["admin"]>): Promise<boolean> {
    const now = this.#whatWasRead();
    for (const seen of [now, this.#seen]) {
      if (seen === null || seen.newest < 0) continue;
      // The first offset stamped after `newest` (the end when none is): in the topic that was
      // read, at the position or beyond.
      const after = await admin.fetchTopicOffsetsByTimestamp(this.#opts.topic, seen.newest + 1);
      if (after.some((o) => Number(o.offset) < (seen.read.get(o.partition) ?? 0))) return true;
    }
    this.#seen = now;
    return false;
  }

  async write(id: string, record: T | null): Promise<void> {
    const value = record === null ? null : JSON.stringify(record);
    await this.#opts.output.send([{ topic: this.#opts.topic, key: id, value }]);
    if (value === null) this.#latest.delete(id);
    else this.#latest.set(id, value);
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#watch);
    await this.#checking;
    await this.#consumer?.disconnect().catch(() => {});
    await this.#ids?.close().catch(() => {});
    // Nothing will be applied any more: whoever waits is let go rather than left hanging.
    for (const w of this.#waiters.splice(0)) w.resolve();
  }
}

class MissingTopic extends Error {}
