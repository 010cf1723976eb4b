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
import { type RetentionProblem, retentionProblem, TopicLayoutError } from "../transport/topics.ts";
import { METADATA_MAX_AGE_MS, TOPIC_CHECK_MS } from "./kafka.ts";

/** A record as read (a null value is a tombstone): its meaning is src/rules/limits.ts's. */
export interface LimitsRecord {
  key: string;
  value: Uint8Array | null;
  partition: number;
  offset: string;
}

/**
 * How often a running service looks at the limits topic's retention again, one DescribeConfigs each
 * time. A retention altered in place (`--add-config cleanup.policy=delete`, or `retention.ms` set on a
 * `compact,delete` topic) was seen at the next start only, and the sensors' limits went after
 * `retention.ms`, unsaid. Half a minute: seen within the minute an operator of Kafka Streams or
 * ThingsBoard expects, for one small request per interval per process (the id is read every second).
 */
export const LIMITS_RETENTION_CHECK_MS = 30_000;

/** What the limits topic's retention is for: the words of its errors. */
const HOLDS = "the sensors' limits";

/** Options of `LimitsTopicFollower` and `LimitsTopicWatch`. */
export interface LimitsTopicOptions {
  /**
   * Whether the follower says what is wrong with the topic (true by default): a retention that
   * deletes (refused at start, an error while it runs), the topic created again (an error). Engine
   * workers each follow the topic for their own rule set and say none of it: with each saying it, an
   * operator read every line `WORKERS` times. The main thread's `LimitsTopicWatch` says it once.
   */
  report?: boolean;
  /** How often the retention is looked at again while it runs (`LIMITS_RETENTION_CHECK_MS`). */
  retentionCheckMs?: number;
}

/**
 * The limits topic's retention, looked at again every interval, and said once per change, not at
 * each look: an error for a retention that deletes (the start's refusal, its words and its fix; the
 * service runs on with the limits it has read), a warning for a topic that deletes nothing but is not
 * compacted, an info once it is set right. A topic created again is looked at at the next tick, and
 * at every tick until the broker answers (tooling that creates it, then sets `cleanup.policy`, has
 * had a second more); what is wrong with it is said even when the old topic had it too.
 */
class RetentionWatch {
  readonly #kafka: Kafka;
  readonly #topic: string;
  readonly #logger: Logger;
  readonly #intervalMs: number;
  /** The problem the last look found (null: none). */
  #found: RetentionProblem | null = null;
  #lookedAt = -Infinity;
  /** Created again and not looked at since. */
  #recreated = false;
  /** Looks at the retention, whatever they found. */
  looks = 0;

  constructor(kafka: Kafka, topic: string, logger: Logger, intervalMs: number) {
    this.#kafka = kafka;
    this.#topic = topic;
    this.#logger = logger;
    this.#intervalMs = intervalMs;
  }

  /** At start: throws a `TopicLayoutError` when the retention deletes records; a warning is said. */
  async refuse(): Promise<void> {
    const problem = await this.#look();
    if (problem?.level === "error") throw new TopicLayoutError(problem.message);
    if (problem !== null) this.#logger.warn(problem.message, { topic: this.#topic });
    this.#found = problem;
  }

  recreated(): void {
    this.#recreated = true;
  }

  /** At each tick: looks again once the interval has passed or the topic was created again. */
  async tick(): Promise<void> {
    if (!this.#recreated && performance.now() - this.#lookedAt < this.#intervalMs) return;
    const recreated = this.#recreated;
    const problem = await this.#look();
    this.#recreated = false;
    const before = this.#found;
    this.#found = problem;
    if (problem === null) {
      if (before !== null) {
        this.#logger.info(
          `The topic "${this.#topic}" holds ${HOLDS} and deletes none of them now: its retention is set right`,
          { topic: this.#topic },
        );
      }
      return;
    }
    if (recreated || problem.message !== before?.message) {
      this.#logger[problem.level](problem.message, { topic: this.#topic });
    }
  }

  /** One DescribeConfigs; a look that fails is tried again at the next interval (or tick, created again). */
  async #look(): Promise<RetentionProblem | null> {
    this.#lookedAt = performance.now();
    const admin = this.#kafka.admin();
    await admin.connect();
    try {
      return await retentionProblem(admin, this.#topic, HOLDS);
    } finally {
      this.looks++;
      await admin.disconnect();
    }
  }
}

/**
 * The interval's checks of the topic that fail, said once per run of failures and once when a check
 * passes again; the others go to debug. With the broker gone every check failed, once a second in
 * each engine worker and in the main thread: 112 of the service's 142 log lines in a 40 s outage with
 * WORKERS=2, where the consumers say so in a line per restart. `report`: false in an engine worker,
 * whose main thread says it.
 */
class CheckFailures {
  readonly #logger: Logger;
  readonly #topic: string;
  readonly #report: boolean;
  /** When the current run of failures began (`performance.now()`), null while checks pass. */
  #since: number | null = null;
  #count = 0;

  constructor(logger: Logger, topic: string, report: boolean) {
    this.#logger = logger;
    this.#topic = topic;
    this.#report = report;
  }

  failed(error: unknown): void {
    this.#count++;
    const first = this.#since === null;
    this.#since ??= performance.now();
    this.#logger[first && this.#report ? "warn" : "debug"](
      "Cannot check the limits topic (its id or its retention): checking again every second, said again when a check passes",
      { topic: this.#topic, error },
    );
  }

  passed(): void {
    if (this.#since === null) return;
    this.#logger[this.#report ? "info" : "debug"]("The limits topic can be checked again", {
      topic: this.#topic,
      failed_checks: this.#count,
      for_ms: Math.round(performance.now() - this.#since),
    });
    this.#since = null;
    this.#count = 0;
  }
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
 *
 * Unless told not to report (see `LimitsTopicOptions`), its retention is looked at again every
 * `LIMITS_RETENTION_CHECK_MS` (see `RetentionWatch`).
 */
export class LimitsTopicFollower {
  readonly #kafka: Kafka;
  readonly #topic: string;
  readonly #logger: Logger;
  readonly #groupPrefix: string;
  readonly #onRecords: (records: readonly LimitsRecord[]) => void;
  readonly #ids: TopicIds | null;
  readonly #report: boolean;
  /** Null when it does not report. */
  readonly #retention: RetentionWatch | null;
  #consumer: Consumer | null = null;
  /** Keys whose newest record handed on holds a value (not a tombstone). */
  #keys = new Set<string>();
  #topicId: string | null = null;
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
    { report = true, retentionCheckMs = LIMITS_RETENTION_CHECK_MS }: LimitsTopicOptions = {},
  ) {
    this.#kafka = kafka;
    this.#topic = topic;
    this.#logger = logger;
    this.#groupPrefix = groupPrefix;
    this.#onRecords = onRecords;
    this.#ids = ids;
    this.#report = report;
    this.#retention = report ? new RetentionWatch(kafka, topic, logger, retentionCheckMs) : null;
  }

  /** Looks at the topic's retention since start (none when it does not report). */
  get retentionChecks(): number {
    return this.#retention?.looks ?? 0;
  }

  /** Starts following; resolves once every record written before the call has been handed on. */
  async start(timeoutMs = 60_000): Promise<void> {
    this.#topicId = await this.#ids?.read(this.#topic) ?? null;
    // Its newest record per sensor is that sensor's limits for as long as it stands: a topic made by
    // other tooling with the cluster's defaults deleted them after a week, and the sensors fell back
    // to the tables' limits, unsaid.
    if (this.#topicId !== null || this.#ids === null) await this.#retention?.refuse();
    await this.#follow(timeoutMs);
    this.#logger.info("Limits topic read", { topic: this.#topic, records: this.records });
    if (this.#ids !== null || this.#retention !== null) {
      const failures = new CheckFailures(this.#logger, this.#topic, this.#report);
      this.#timer = setInterval(() => {
        if (this.#checking !== null) return;
        this.#checking = this.#check().then(() => failures.passed(), (error) => failures.failed(error))
          .finally(() => this.#checking = null);
      }, TOPIC_CHECK_MS);
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
    await this.#retention?.tick();
    if (this.#ids === null) return;
    const id = await this.#ids.read(this.#topic);
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
    // Said once per process: an engine worker says what it read (the main thread says the error).
    const fields = {
      topic: this.#topic,
      old_id: this.#topicId,
      new_id: id,
      records: this.records,
      keys_removed: gone.length,
    };
    if (this.#report) {
      this.#logger.error("The limits topic was deleted and created again: read anew from its start", fields);
    } else this.#logger.info("Limits topic created again: read anew from its start", fields);
    this.#topicId = id;
    this.recreations++;
    this.#retention?.recreated();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    await this.#checking;
    await this.#consumer?.disconnect();
    await this.#ids?.close().catch(() => {});
  }
}

/**
 * The limits topic watched by the main thread while engine workers follow it (src/workers/): they
 * read it for their rule sets and say nothing of it (`report: false`), and what is wrong with it is
 * said here, once for the process, whichever worker is restarting: a retention that deletes (refused
 * at start, before a worker is started; an error when altered while it runs, see `RetentionWatch`),
 * the topic deleted and created again (an error; each worker reads the new one anew, and says so at
 * info). It reads no record.
 */
export class LimitsTopicWatch {
  readonly #topic: string;
  readonly #logger: Logger;
  readonly #ids: TopicIds | null;
  readonly #retention: RetentionWatch;
  #topicId: string | null = null;
  #timer: ReturnType<typeof setInterval> | undefined;
  #checking: Promise<void> | null = null;
  #stopped = false;
  /** Times the topic was found deleted and created again. */
  recreations = 0;

  constructor(
    kafka: Kafka,
    topic: string,
    logger: Logger,
    ids: TopicIds | null = topicIds(kafka),
    { retentionCheckMs = LIMITS_RETENTION_CHECK_MS }: Omit<LimitsTopicOptions, "report"> = {},
  ) {
    this.#topic = topic;
    this.#logger = logger;
    this.#ids = ids;
    this.#retention = new RetentionWatch(kafka, topic, logger, retentionCheckMs);
  }

  /** Looks at the topic's retention since start. */
  get retentionChecks(): number {
    return this.#retention.looks;
  }

  /** Throws a `TopicLayoutError` when the topic's retention deletes records, as the follower does. */
  async start(): Promise<void> {
    this.#topicId = await this.#ids?.read(this.#topic) ?? null;
    if (this.#topicId !== null || this.#ids === null) await this.#retention.refuse();
    const failures = new CheckFailures(this.#logger, this.#topic, true);
    this.#timer = setInterval(() => {
      if (this.#checking !== null) return;
      this.#checking = this.#check().then(() => failures.passed(), (error) => failures.failed(error))
        .finally(() => this.#checking = null);
    }, TOPIC_CHECK_MS);
  }

  async #check(): Promise<void> {
    await this.#retention.tick();
    if (this.#ids === null) return;
    const id = await this.#ids.read(this.#topic);
    if (id === null || this.#stopped || id === this.#topicId) return;
    if (this.#topicId !== null) {
      this.#logger.error(
        "The limits topic was deleted and created again: each engine worker reads it anew from its start",
        { topic: this.#topic, old_id: this.#topicId, new_id: id },
      );
      this.recreations++;
      this.#retention.recreated();
    }
    this.#topicId = id;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    await this.#checking;
    await this.#ids?.close().catch(() => {});
  }
}
