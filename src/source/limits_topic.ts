/**
 * Follows a compacted topic of per-sensor limits (LIMITS_TOPIC) from its start: each record (key: a
 * sensor id) handed on with the batch it was fetched in. The records' meaning is the rules'
 * (src/rules/limits.ts); this reads them.
 *
 * @module
 */
import type { Consumer, Kafka } from "kafkajs";
import type { Logger } from "../log.ts";
import { type TopicIds, topicIds } from "../transport/topic_id.ts";
import { refuseExpiringTopic, TopicLayoutError } from "../transport/topics.ts";
import { METADATA_MAX_AGE_MS, TOPIC_CHECK_MS } from "./kafka.ts";

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
 * each: nothing is kept here but the keys that hold a value (the whole topic's values were, and all of
 * them were handed on again, to be parsed again, every 250 ms while records arrived).
 *
 * The topic deleted and created again (a new topic id, checked every `TOPIC_CHECK_MS`) is read anew
 * from its start by a new consumer, and the keys the old topic had and the new one does not get a
 * tombstone once the new one is read to its end: the old consumer's position would have skipped the
 * new topic's first records, and the old topic's sensors would have kept their bands for ever.
 */
export class LimitsTopicFollower {
  readonly #kafka: Kafka;
  readonly #topic: string;
  readonly #logger: Logger;
  readonly #groupPrefix: string;
  readonly #onRecords: (records: readonly LimitsRecord[]) => void;
  readonly #ids: TopicIds | null;
  #consumer: Consumer | null = null;
  /** Keys whose newest record handed on holds a value (not a tombstone). */
  #keys = new Set<string>();
  #topicId: string | null = null;
  /** The topic was created again and its retention is still to be checked (see `#checkRetention`). */
  #retentionUnchecked = false;
  #timer: ReturnType<typeof setInterval> | undefined;
  #checking: Promise<void> | null = null;
  #stopped = false;
  /** Records handed on since start. */
  records = 0;
  /** Times the topic was found deleted and created again. */
  recreations = 0;

  constructor(
    kafka: Kafka,
    topic: string,
    groupPrefix: string,
    logger: Logger,
    onRecords: (records: readonly LimitsRecord[]) => void,
    ids: TopicIds | null = topicIds(kafka),
  ) {
    this.#kafka = kafka;
    this.#topic = topic;
    this.#logger = logger;
    this.#groupPrefix = groupPrefix;
    this.#onRecords = onRecords;
    this.#ids = ids;
  }

  /** Starts following; resolves once every record written before the call has been handed on. */
  async start(timeoutMs = 60_000): Promise<void> {
    this.#topicId = await this.#ids?.read(this.#topic) ?? null;
    // Its newest record per sensor is that sensor's limits for as long as it stands: a topic made by
    // other tooling with the cluster's defaults deleted them after a week, and the sensors fell back
    // to the tables' limits, unsaid.
    if (this.#topicId !== null || this.#ids === null) await this.#refuseExpiring();
    await this.#follow(timeoutMs);
    this.#logger.info("Limits topic read", { topic: this.#topic, records: this.records });
    if (this.#ids !== null) {
      this.#timer = setInterval(() => {
        if (this.#checking !== null) return;
        this.#checking = this.#check().catch((error) =>
          this.#logger.warn(
            "Cannot check the limits topic (its id, or the retention of the topic created again), checking again on the next interval",
            {
              topic: this.#topic,
              error,
            },
          )
        ).finally(() => this.#checking = null);
      }, TOPIC_CHECK_MS);
    }
  }

  /** Throws a `TopicLayoutError` when the topic's retention deletes records (see `refuseExpiringTopic`). */
  async #refuseExpiring(): Promise<void> {
    const admin = this.#kafka.admin();
    await admin.connect();
    try {
      await refuseExpiringTopic(admin, this.#topic, "the sensors' limits", this.#logger);
    } finally {
      await admin.disconnect();
    }
  }

  /** Reads the topic from its start with a new consumer, up to the ends found first. */
  async #follow(timeoutMs: number): Promise<void> {
    const admin = this.#kafka.admin();
    await admin.connect();
    let ends: { partition: number; high: string }[];
    try {
      ends = await admin.fetchTopicOffsets(this.#topic);
    } finally {
      await admin.disconnect();
    }
    /** Per partition: the offset after the newest record this consumer read. */
    const position = new Map<number, number>();
    const consumer = this.#consumer = this.#kafka.consumer({
      groupId: `${this.#groupPrefix}.limits-reader.${crypto.randomUUID()}`,
      allowAutoTopicCreation: false,
      maxWaitTimeInMs: 100,
      metadataMaxAge: METADATA_MAX_AGE_MS,
    });
    // Batches of only transaction markers never reach eachBatch, but they move the position.
    consumer.on(consumer.events.END_BATCH_PROCESS, (e) => {
      const { partition, lastOffset } = e.payload as { partition: number; lastOffset: string };
      const next = Number(lastOffset) + 1;
      if (next > (position.get(partition) ?? 0)) position.set(partition, next);
    });
    await consumer.connect();
    await consumer.subscribe({ topics: [this.#topic], fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: ({ batch }) => {
        // A consumer replaced meanwhile (the topic was created again) hands nothing on.
        if (this.#consumer !== consumer) return Promise.resolve();
        const records: LimitsRecord[] = [];
        for (const m of batch.messages) {
          const key = m.key?.toString("utf8");
          if (key === undefined || key === "") continue;
          records.push({ key, value: m.value, partition: batch.partition, offset: m.offset });
          if (m.value === null) this.#keys.delete(key);
          else this.#keys.add(key);
        }
        if (records.length > 0) {
          this.records += records.length;
          this.#onRecords(records);
        }
        const last = batch.messages.at(-1);
        if (last !== undefined && Number(last.offset) + 1 > (position.get(batch.partition) ?? 0)) {
          position.set(batch.partition, Number(last.offset) + 1);
        }
        return Promise.resolve();
      },
    });
    const started = Date.now();
    const behind = () => ends.some((e) => (position.get(e.partition) ?? 0) < Number(e.high));
    while (behind()) {
      if (this.#stopped) return;
      if (Date.now() - started > timeoutMs) {
        throw new Error(`Cannot read the limits topic "${this.#topic}" to its end within ${timeoutMs} ms`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Reads the topic anew when its id changed; its old keys not in the new topic are deleted. */
  async #check(): Promise<void> {
    if (this.#retentionUnchecked) await this.#checkRetention();
    const id = await this.#ids!.read(this.#topic);
    if (id === null || this.#stopped) return; // Gone: the old bands stand until a new topic is there.
    if (this.#topicId === null) {
      this.#topicId = id;
      return;
    }
    if (id === this.#topicId) return;
    const old = this.#consumer;
    this.#consumer = null;
    await old?.disconnect();
    const before = this.#keys;
    this.#keys = new Set();
    try {
      await this.#follow(60_000);
    } catch (err) {
      // The next check tries again, and still knows the old topic's keys.
      for (const key of before) this.#keys.add(key);
      throw err;
    }
    // Stopped halfway: what was not read again is not known to be gone.
    if (this.#stopped) return;
    const gone = [...before].filter((key) => !this.#keys.has(key));
    if (gone.length > 0) {
      this.#onRecords(gone.map((key) => ({ key, value: null, partition: -1, offset: "-1" })));
    }
    this.#logger.error("The limits topic was deleted and created again: read anew from its start", {
      topic: this.#topic,
      old_id: this.#topicId,
      new_id: id,
      records: this.records,
      keys_removed: gone.length,
    });
    this.#topicId = id;
    this.recreations++;
    this.#retentionUnchecked = true;
  }

  /**
   * A topic created again by other tooling, maybe with the cluster's defaults (delete after 7 days):
   * the service runs on, so the refusal at start becomes an error line with the fix. Checked at the
   * tick after the recreation was read (tooling that creates, then sets `cleanup.policy`, has had a
   * second more), and at every tick until the broker answers.
   */
  async #checkRetention(): Promise<void> {
    this.#retentionUnchecked = false;
    try {
      await this.#refuseExpiring();
    } catch (err) {
      if (err instanceof TopicLayoutError) {
        this.#logger.error(err.message, { topic: this.#topic });
        return;
      }
      this.#retentionUnchecked = true;
      throw err;
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    await this.#checking;
    await this.#consumer?.disconnect();
    await this.#ids?.close().catch(() => {});
  }
}
