import type { Consumer, Kafka } from "kafkajs";
import type { Logger } from "../log.ts";
import type { InputRecord } from "../contract/records.ts";
import { Backoff } from "../transport/backoff.ts";
import { beforeRejoin } from "../transport/before_rejoin.ts";
import { beforeOffsetReset, type OutOfRange } from "../transport/before_reset.ts";
import { errorTypes, isRetriable, kafkaProblem, onOffsetReset, onTopicTrouble } from "../transport/kafka.ts";
import { type TopicIds, topicIds } from "../transport/topic_id.ts";

export interface BatchContext {
  /** Keeps the group membership alive during a long wait (e.g. a retried produce). */
  heartbeat(): Promise<void>;
  /** False once the consumer is stopping; a handler should then give up and throw. */
  isRunning(): boolean;
  /**
   * The batch's last offset, past trailing transaction markers and aborted records: committing
   * `lastOffset + 1` leaves no lag behind on a topic written with transactions.
   */
  lastOffset: string;
  /**
   * Commit this batch's offset only once `durable` resolves, and let the source fetch on meanwhile
   * (the handler returned before its output is acknowledged). Batches of a partition are committed
   * in order; after a rejected `durable` the partition's offset stays where it was until the next
   * group join (which reads from the committed offset again).
   */
  commitAfter(durable: Promise<void>): void;
}

export interface ConsumerOptions {
  kafka: Kafka;
  groupId: string;
  topic: string;
  fromBeginning?: boolean;
  logger: Logger;
  /** Handles one batch of one partition. The batch's offsets are committed only after it resolves. */
  handle(records: InputRecord[], ctx: BatchContext): Promise<void>;
  maxBytesPerPartition?: number;
  /** How long the group waits for a silent member before moving its partitions (default 30 s). */
  sessionTimeoutMs?: number;
  /** False when the handler commits offsets itself (in a transaction). Default true. */
  autoCommit?: boolean;
  /**
   * How often processed offsets are committed (default 500 ms), in one request for all partitions:
   * a commit per batch cost a broker round trip each, serialized, before the next fetch.
   */
  commitIntervalMs?: number;
  /** Batches whose `commitAfter` is still pending before a handler is made to wait (default 12). */
  maxPendingBatches?: number;
  /** How long `stop` waits for pending outputs before it leaves the group without them (default 10 s). */
  stopGraceMs?: number;
  /**
   * At a rebalance: resolves once the pending outputs worth waiting for are settled (by default the
   * hand-over waits for every pending output, within its wait). The hand-over then commits what is
   * durable and the member rejoins: outputs that wait for something that is down (a notifier's
   * retries, minutes) held every rebalance of the group for the hand-over's whole wait.
   */
  settledAtRebalance?(): Promise<void>;
  /** After every group join, with this member's partitions of `topic`. */
  onAssign?(partitions: number[]): void;
  /**
   * Records deleted before this group read them (retention, DeleteRecords), once per gap, before the
   * batch after it is handled; the gap is reported again if this rejects.
   */
  onGap?(gap: OffsetGap): Promise<void>;
  /**
   * The topic was deleted and created again while this member read it (its id changed): the
   * handler drops what it kept of the old topic's offsets (not the sensors' state) before this
   * member's `partitions` are read again from the new topic's first offsets (`starts`). Batches
   * fetched before are not handled, and none is handled until it resolves.
   */
  onRecreated?(partitions: number[], starts: Map<number, bigint>): Promise<void>;
  /** Reads the topic's id (default: over `kafka`'s own connection; null: never checked). */
  topicIds?: TopicIds | null;
  /**
   * No batch is handled before this resolves; meanwhile fetched batches wait, heartbeating, and are
   * handled once it does (or read again after a rebalance). Engine workers starting together hold
   * their first batches until all of them are in the group (see `EngineWorkers`).
   */
  processAfter?: Promise<void>;
}

/** Offsets `from`..`to` of a partition were deleted before the group read them. */
export interface OffsetGap {
  topic: string;
  partition: number;
  from: string;
  to: string;
  records: number;
}

/** kafkajs's test for an error that means the group rebalances (its `isRebalancing`). */
function rebalancing(err: unknown): boolean {
  return errorTypes(err).some((t) =>
    t === "REBALANCE_IN_PROGRESS" || t === "NOT_COORDINATOR_FOR_GROUP" || t === "ILLEGAL_GENERATION"
  );
}

/**
 * How often a consumer checks its topic's id: one small metadata request, a median 0.49 ms on
 * localhost (5 runs of 200 reads). A batch is handled without a check of its own while the last one
 * that found the same id started less than two intervals ago and no fetch was answered "unknown
 * topic" since: a consumer that fetched all along saw the deletion, one that did not (a pause, a
 * blocked thread) checks before it goes on.
 */
export const TOPIC_CHECK_MS = 1_000;

/** How soon a consumer notices partitions added to its topic (one small metadata request each time). */
export const METADATA_MAX_AGE_MS = 5_000;

/**
 * How long a stop waits to report a gap found and not yet reported (see `#reportUnclaimed`): the
 * shutdown deadline (SHUTDOWN_TIMEOUT_MS, 20 s) covers everything else a stop does.
 */
const UNCLAIMED_REPORT_MS = 5_000;

/** What a hand-over before a rejoin may take beyond its wait for the outputs: a commit, a read. */
const REJOIN_SLACK_MS = 2_000;

/**
 * A consumer-group member with at-least-once delivery: a batch's last offset is resolved (and so
 * committed) only after `handle` resolved. A batch whose handler throws is fetched again.
 */
export class KafkaSource {
  readonly consumer: Consumer;
  readonly groupId: string;
  readonly topic: string;
  readonly #opts: ConsumerOptions;
  /** Partitions this member owns, updated on every group join. */
  assigned: { topic: string; partition: number }[] = [];
  joined = false;
  #crashed: Error | null = null;
  #stopping = false;
  /**
   * Between restarts after a crash: a crash loop (the broker gone for minutes, a fenced producer)
   * waits up to 30 s between attempts, and a member that stayed in its group for a minute starts
   * over at 1 s.
   */
  readonly #restartBackoff = new Backoff({ initialMs: 1000, maxMs: 30_000, healthyMs: 60_000 });
  #restartTimer: ReturnType<typeof setTimeout> | undefined;
  /** Why this member is not consuming (for readiness), null while it is in its group. */
  problem: string | null = null;
  /** Per partition: records deleted before this group read them (a metric). */
  readonly deletedUnread = new Map<number, number>();
  /**
   * Partitions the handler holds back, with why (readiness and a metric): paused, and resumed after
   * a while for the handler to look again (see `hold`).
   */
  readonly held = new Map<number, string>();
  readonly #holdTimers = new Map<number, ReturnType<typeof setTimeout>>();
  /** Per partition: the offset after the last batch handled since the last join. */
  readonly #expected = new Map<number, bigint>();
  /** Partitions kafkajs moved past deleted records: the offset it could not read (null: the committed one). */
  readonly #reset = new Map<number, bigint | null>();
  /**
   * The group's committed offsets, read before kafkajs fetches (at each start and rebalance): when
   * kafkajs finds a committed offset out of range it overwrites it with "earliest" at once, so a
   * gap at the first fetch after a join can only be measured from what was read before.
   */
  #committedBefore = new Map<number, bigint>();
  /**
   * Per partition: the report of the gap kafkajs found at an offset out of range (`from`), under way
   * or done, resolving with the offset it reported up to (see `#beforeReset`). Cleared when the
   * topic is created again (its offsets start over).
   */
  readonly #resetReports = new Map<number, { from: bigint | null; done: Promise<bigint | null> }>();
  readonly #unsubscribe: () => void;
  /** Removes the hooks kafkajs runs before this member rejoins and before it resets an offset. */
  #unhook: () => void = () => {};
  /** kafkajs's heartbeat of the running consumer (the same for every batch), once a batch came. */
  #heartbeat: (() => Promise<void>) | null = null;
  /** False while `processAfter` has not resolved. */
  #processing = true;
  /** Per partition: the next offset to read once everything before it is durable (to commit). */
  readonly #done = new Map<number, string>();
  /** Per partition: what the broker has from us. */
  readonly #committed = new Map<number, string>();
  /** Per partition: the newest batch's durability, so a partition's batches complete in order. */
  readonly #chain = new Map<number, Promise<void>>();
  readonly #pending = new Set<Promise<void>>();
  /** Partitions with a failed batch: not committed again until the next group join. */
  readonly #broken = new Set<number>();
  #commitTimer: ReturnType<typeof setInterval> | undefined;
  #committing: Promise<void> | null = null;
  /** Reads the topic's id (null: not checked). */
  readonly #ids: TopicIds | null;
  /** The id of the topic this member's positions are on; null until a check succeeded. */
  #topicId: string | null = null;
  /** Changes of the topic's id so far: a batch fetched under an earlier one is not handled. */
  #incarnation = 0;
  /** When (`performance.now()`) the last check that found the topic unchanged started. */
  #verifiedAt = -Infinity;
  /** When a batch's check last failed. */
  #failedAt = -Infinity;
  /** A fetch was answered "unknown topic", or the topic is gone: every batch waits for a check. */
  #suspect = false;
  #gone = false;
  #checking: { started: number; done: Promise<void> } | null = null;
  #checkTimer: ReturnType<typeof setInterval> | undefined;
  /** While this class holds the topic paused: the partitions paused before it (null: not held). */
  #heldPaused: number[] | null = null;
  readonly #untrouble: () => void;
  /** Times the topic was found deleted and created again (a metric). */
  recreations = 0;

  constructor(opts: ConsumerOptions) {
    this.#opts = opts;
    if (opts.processAfter !== undefined) {
      this.#processing = false;
      opts.processAfter.then(() => this.#processing = true, () => this.#processing = true);
    }
    this.groupId = opts.groupId;
    this.topic = opts.topic;
    this.consumer = opts.kafka.consumer({
      groupId: opts.groupId,
      allowAutoTopicCreation: false,
      maxBytesPerPartition: opts.maxBytesPerPartition ?? 1024 * 1024,
      maxWaitTimeInMs: 100,
      sessionTimeout: opts.sessionTimeoutMs ?? 30000,
      heartbeatInterval: Math.min(3000, Math.floor((opts.sessionTimeoutMs ?? 30000) / 3)),
      // kafkajs gives up after these retries (~10 s) and the consumer crashes: this class restarts
      // it with its own backoff, one log line per restart, and readiness says why meanwhile. With
      // kafkajs's restarts (a fixed 300 ms, ~34 s of retries each) a broker outage looked healthy
      // for half a minute and then filled the log.
      retry: { retries: 5, restartOnFailure: () => Promise.resolve(false) },
      // Partitions added to the topic are noticed at the next metadata refresh, which then rejoins
      // the group: with kafkajs's default of 5 minutes new partitions went unread for 4 min 31 s.
      metadataMaxAge: METADATA_MAX_AGE_MS,
    });
    this.#unsubscribe = onOffsetReset(opts.kafka, (r) => {
      if (r.groupId !== opts.groupId || r.topic !== opts.topic) return;
      // The offset it could not read, decided now: a rejoin before the partition's next batch reads
      // the committed offsets again, and finds kafkajs's "earliest" there by then.
      this.#reset.set(
        r.partition,
        this.#expected.get(r.partition) ?? this.#committedBefore.get(r.partition) ?? null,
      );
      // Out of range: records deleted, or a new topic under the old name. The id tells which.
      this.#suspect = true;
    });
    this.#ids = opts.topicIds === undefined ? topicIds(opts.kafka) : opts.topicIds;
    this.#untrouble = onTopicTrouble(opts.kafka, () => {
      if (this.#ids === null || this.#stopping) return;
      this.#suspect = true;
      this.#check(performance.now()).catch(() => {});
    });
    const { GROUP_JOIN, CRASH, STOP } = this.consumer.events;
    this.consumer.on(GROUP_JOIN, (e) => {
      this.joined = true;
      this.#unhook();
      // A join that completes while this member stops (its rejoin was under way) leaves no hook behind.
      if (!this.#stopping) {
        const unhookRejoin = beforeRejoin(opts.groupId, e.payload.memberId, () => this.#beforeRejoin());
        const unhookReset = beforeOffsetReset(
          opts.groupId,
          e.payload.memberId,
          (at) => this.#beforeReset(at),
        );
        this.#unhook = () => {
          unhookRejoin();
          unhookReset();
        };
      }
      this.problem = null;
      this.#restartBackoff.healthy();
      const assignment = e.payload.memberAssignment as Record<string, number[]>;
      this.assigned = Object.entries(assignment).flatMap(([topic, ps]) =>
        ps.map((partition) => ({ topic, partition }))
      );
      const mine = this.assigned.filter((a) => a.topic === opts.topic).map((a) => a.partition);
      // A join reads every partition from its committed offset again.
      this.#broken.clear();
      this.#expected.clear();
      for (const p of [...this.#done.keys()]) {
        if (!mine.includes(p)) {
          this.#done.delete(p);
          this.#committed.delete(p);
          this.#chain.delete(p);
        }
      }
      opts.onAssign?.(mine);
      if (!this.#stopping) {
        this.#reportUnclaimed(mine).catch((error) =>
          opts.logger.warn("Cannot report records deleted unread", { group: opts.groupId, error })
        );
      }
      opts.logger.info("Joined consumer group", {
        group: opts.groupId,
        partitions: this.assigned.map((a) => a.partition).join(","),
      });
    });
    this.consumer.on(CRASH, (e) => this.#restartLater(e.payload.error));
    this.consumer.on(STOP, () => {
      this.joined = false;
    });
  }

  get crashed(): Error | null {
    return this.#crashed;
  }

  /**
   * Joins the group and starts consuming. A failure (the broker gone again) is not thrown: the
   * member keeps trying with backoff, like after a crash, and `problem` says why meanwhile.
   */
  async start(): Promise<void> {
    await this.#run().catch((err) => this.#restartLater(err));
  }

  /**
   * After a crash or a failed (re)start: kafkajs gives up on errors it deems permanent and on a
   * broker gone longer than its retries, and the stream must not stop for good, so start over from
   * the committed offsets after a pause.
   */
  #restartLater(err: unknown): void {
    const error = err instanceof Error ? err : new Error(String(err));
    this.#crashed = error;
    this.joined = false;
    if (this.#stopping) return;
    const { logger, groupId } = this.#opts;
    const delay = this.#restartBackoff.next();
    const problem = kafkaProblem(error);
    this.problem = `Kafka consumer group "${groupId}" restarting: ${problem}`;
    // A broker that is gone or not ready is the world, not a fault of ours: the consumer waits for it
    // (a warning per attempt, like the wait at start-up). Anything else is a crash.
    const lost = isRetriable(error);
    logger[lost ? "warn" : "error"](
      lost ? "Consumer lost the broker, restarting" : "Consumer crashed, restarting",
      {
        group: groupId,
        problem,
        restarts: this.#restartBackoff.failures,
        restart_in_ms: delay,
      },
    );
    clearTimeout(this.#restartTimer);
    this.#restartTimer = setTimeout(() => {
      if (this.#stopping) return;
      this.#run().catch((e) => this.#restartLater(e));
    }, delay);
  }

  async #run(): Promise<void> {
    const { topic, handle, logger } = this.#opts;
    if (this.#crashed !== null) {
      logger.debug("Restarting the consumer", { group: this.groupId });
      await this.consumer.disconnect().catch(() => {});
    }
    await this.consumer.connect();
    await this.consumer.subscribe({ topics: [topic], fromBeginning: this.#opts.fromBeginning ?? true });
    await this.#readCommitted();
    // The topic's id before the first fetch: the positions the group has are on this topic.
    await this.#check(performance.now()).catch((error) =>
      logger.debug("Cannot read the topic's id yet", { topic, error })
    );
    if (this.#ids !== null && this.#checkTimer === undefined) {
      this.#checkTimer = setInterval(() => {
        // One at a time: with the broker gone a check waits for kafkajs's retries, and checks queued
        // behind it would all run once it is back.
        if (this.#checking !== null) return;
        this.#check(performance.now()).catch((error) =>
          logger.debug("Cannot read the topic's id, checking again on the next interval", { topic, error })
        );
      }, TOPIC_CHECK_MS);
    }
    if ((this.#opts.autoCommit ?? true) && this.#commitTimer === undefined) {
      this.#commitTimer = setInterval(() => {
        this.commitNow().catch((error) =>
          logger.warn("Offset commit failed, retrying on the next interval", { group: this.groupId, error })
        );
      }, this.#opts.commitIntervalMs ?? 500);
    }
    await this.consumer.run({
      // Offsets are committed by this class (or by the handler's transaction), never by kafkajs: it
      // commits after every batch, a round trip each before the next fetch.
      autoCommit: false,
      eachBatchAutoResolve: false,
      // Batches of different partitions overlap their produce and commit round trips; evaluation is
      // synchronous, so the engine still sees one batch at a time, and each partition stays in order.
      partitionsConsumedConcurrently: 6,
      eachBatch: async (
        { batch, resolveOffset, heartbeat, isRunning, isStale },
      ) => {
        this.#heartbeat = heartbeat;
        const beat = (this.#opts.autoCommit ?? true) ? () => this.#beat(heartbeat) : heartbeat;
        if (batch.messages.length === 0 || !isRunning() || isStale()) return;
        if (this.#reset.has(batch.partition)) {
          // Before any hold: kafkajs committed "earliest" for the group in place of the offset it
          // could not read, so no later owner of the partition can tell a gap. A first start's
          // engine worker that held it until its siblings joined, and lost it to one of them, let
          // the gap pass in silence (CI, tests/integration/kafka_deleted_records_test.ts).
          if (await this.#confirmTopic() === null) return;
          if (this.#reset.has(batch.partition)) {
            await this.#reportGap(batch.partition, batch.messages[0]!.offset);
          }
        }
        if (!this.#processing) {
          // Heartbeats go on: a rebalance meanwhile is noticed here, with nothing processed to hand in.
          while (!this.#processing && isRunning() && !this.#stopping) {
            await beat();
            await new Promise((r) => setTimeout(r, 100));
          }
          if (!isRunning() || isStale() || this.#stopping) return;
        }
        const incarnation = await this.#confirmTopic();
        if (incarnation === null) return;
        const records: InputRecord[] = batch.messages.map((m) => ({
          topic: batch.topic,
          partition: batch.partition,
          offset: m.offset,
          key: m.key === null ? null : m.key.toString("utf8"),
          value: m.value,
        }));
        const lastOffset = batch.lastOffset();
        this.#expected.set(batch.partition, BigInt(lastOffset) + 1n);
        let durable: Promise<void> | null = null;
        await handle(records, {
          heartbeat: beat,
          isRunning: () => isRunning() && !this.#stopping && this.#incarnation === incarnation,
          lastOffset,
          commitAfter: (p) => durable = p,
        });
        // The topic was replaced meanwhile: the partition was sought to the new topic's start, which
        // resolving this batch's offset would undo.
        if (this.#incarnation !== incarnation) {
          (durable as Promise<void> | null)?.catch(() => {});
          return;
        }
        // The handler held the partition back: the batch is read again when the hold ends.
        if (this.held.has(batch.partition)) {
          (durable as Promise<void> | null)?.catch(() => {});
          const first = BigInt(records[0]!.offset!);
          // Records deleted while it is held are reported from here (the gap report's next offset).
          this.#expected.set(batch.partition, first);
          // A seek already pending (a failed transaction's rewind) reads from further back.
          if (!isStale()) this.rewind(batch.partition, first);
          return;
        }
        // Resolving moves the fetch position; the commit follows once the batch is durable.
        resolveOffset(lastOffset);
        if (this.#opts.autoCommit ?? true) {
          this.#track(batch.partition, lastOffset, durable, incarnation);
          if (this.#pending.size > (this.#opts.maxPendingBatches ?? 12)) {
            await Promise.race(this.#pending);
          }
          if (this.#stopping) {
            // The consumer leaves the group once this batch returns: hand in everything first.
            await this.#settlePending();
            await this.commitNow();
          }
        }
        await beat();
        logger.debug("Batch done", { topic, partition: batch.partition, offset: batch.lastOffset() });
      },
    });
  }

  /**
   * kafkajs's heartbeat, and when it says the group rebalances, everything processed is handed in
   * before the error reaches kafkajs: kafkajs rejoins once the batches in flight returned, and the
   * partitions' next owners read the offsets committed by then. Committing is still allowed while
   * the group waits for this member to rejoin (the generation is the same). Without it, batches
   * whose output was acknowledged but not yet committed (up to the 500 ms commit interval, and the
   * outputs in flight) were processed again by the next owner: 232 alerts repeated of 3,000 events
   * at 1,000 events/s when a second engine worker joined (tests/integration/reliability/hostile_test.ts).
   */
  async #beat(heartbeat: () => Promise<void>): Promise<void> {
    try {
      await heartbeat();
    } catch (err) {
      if (rebalancing(err)) await this.#handOverAtRebalance();
      throw err;
    }
  }

  /**
   * How long a hand-over at a rebalance waits for the outputs in flight. No heartbeat goes out
   * meanwhile, so the wait stays within half the session timeout (counted from the heartbeat that
   * said the group rebalances, which kept the session alive): waiting `stopGraceMs` with outputs in
   * flight for 9 s and a 6 s session, the group dropped the member, refused its commit and rebalanced
   * once more. What is still in flight then is read again by the partitions' next owners.
   */
  #rebalanceWaitMs(): number {
    return Math.min(this.#opts.stopGraceMs ?? 10_000, (this.#opts.sessionTimeoutMs ?? 30000) / 2);
  }

  /**
   * Before kafkajs rejoins the group (see `beforeRejoin`): what is processed is handed in, and the
   * committed offsets are read for the gaps of the next generation. A rebalance noticed by a batch's
   * heartbeat was handed in before the batch returned already (see `#beat`).
   */
  async #beforeRejoin(): Promise<void> {
    // Bounded as a whole, within the session timeout: with the broker frozen, the commit and the
    // read of the committed offsets each waited for kafkajs's retries (minutes), and the member's
    // rejoin with them (a partition still not caught up 3 minutes after a 40 s freeze, in CI). What
    // is not done by then goes on without holding the rejoin, as before this hook.
    const wait = this.#rebalanceWaitMs();
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      this.#handOverAtRebalance().then(() => this.#readCommitted().catch(() => {})),
      new Promise<void>((r) => timer = setTimeout(r, wait + REJOIN_SLACK_MS)),
    ]);
    clearTimeout(timer);
  }

  /**
   * Before kafkajs commits "earliest" in place of a partition's offset it found out of range (see
   * `beforeOffsetReset`): the gap is reported first, from the offset kafkajs was to read (exact,
   * where the offsets read at a join or the last batch's end were not: another member's hand-over
   * after that read, a rewind after a failed transaction) up to the partition's first offset now, so
   * that a process killed right after that commit has said it (it was lost before). What is deleted
   * between this report and the partition's first batch is reported from that batch.
   *
   * Bounded like a rejoin (nothing heartbeats meanwhile): a report that fails or outlasts its wait
   * keeps the offset, kafkajs finds it out of range again and this runs again. The report of an
   * offset is made once (`#resetReports`): a later call for the same offset waits for the report
   * under way, or finds it done (kafkajs's commit after it failed). A report that outlasted its
   * wait started a new one at each of kafkajs's retries: with a DLQ slower than the wait, the same
   * gap was said 10 times in 45 s and the member, never heartbeating, was dropped from its group.
   */
  async #beforeReset(at: OutOfRange): Promise<void> {
    if (at.topic !== this.topic) return;
    if (!this.#reset.has(at.partition)) {
      // Found without kafkajs's log line (its level set to NOTHING): the offset it hands in is enough.
      if (at.offset === null) return;
      this.#suspect = true;
    }
    let report = this.#resetReports.get(at.partition);
    if (report === undefined || report.from === null || report.from !== at.offset) {
      if (at.offset !== null) this.#reset.set(at.partition, at.offset);
      const entry = { from: at.offset, done: this.#reportReset(at.partition) };
      entry.done.catch(() => {
        if (this.#resetReports.get(at.partition) === entry) this.#resetReports.delete(at.partition);
      });
      this.#resetReports.set(at.partition, report = entry);
    }
    const wait = this.#rebalanceWaitMs();
    let timer: ReturnType<typeof setTimeout> | undefined;
    let reported: bigint | null;
    try {
      reported = await Promise.race([
        report.done,
        new Promise<never>((_, reject) =>
          timer = setTimeout(
            () => reject(new Error(`The report of records deleted unread took more than ${wait} ms`)),
            wait,
          )
        ),
      ]);
    } catch (error) {
      this.#opts.logger.warn("Cannot report records deleted unread yet: the offset is kept until it is", {
        group: this.groupId,
        partition: at.partition,
        error,
      });
      throw error;
    } finally {
      clearTimeout(timer);
    }
    // Reported up to `reported`: the partition's first batch reports what was deleted since. kafkajs's
    // log line of a second call set the gap's start back to the offset already reported.
    if (reported === null) this.#reset.delete(at.partition);
    else this.#reset.set(at.partition, reported);
  }

  /**
   * Reports the gap kafkajs found on `partition` (its start in `#reset`), up to the partition's first
   * offset now: resolves with that offset, or null when there is no gap to report (the topic was
   * created again: "earliest" is the new topic's start).
   */
  async #reportReset(partition: number): Promise<bigint | null> {
    if (await this.#confirmTopic() === null) return null;
    const first = (await this.#firstOffsets()).get(partition) ?? 0n;
    // Taken meanwhile by a stop or a join, which reported it.
    if (!this.#reset.has(partition)) return first;
    await this.#reportGap(partition, first.toString());
    return first;
  }

  /**
   * `#handOver` at a rebalance: within `#rebalanceWaitMs`, and no longer than `settledAtRebalance`;
   * a failure is said, not thrown.
   */
  #handOverAtRebalance(): Promise<void> {
    const settled = this.#opts.settledAtRebalance?.().catch(() => {});
    return this.#handOver(this.#rebalanceWaitMs(), settled).catch((error) =>
      this.#opts.logger.warn("Cannot hand in the processed offsets before the rebalance", {
        group: this.groupId,
        error,
      })
    );
  }

  /**
   * Waits for the outputs in flight (at most `maxWaitMs`, else `stopGraceMs`, and no longer than
   * `settled`) and commits what is durable.
   */
  #handOver(maxWaitMs?: number, settled?: Promise<void>): Promise<void> {
    if (!(this.#opts.autoCommit ?? true)) return Promise.resolve();
    return this.#settlePending(maxWaitMs, settled).then(() => this.commitNow());
  }

  /**
   * Reads `partition` again from `offset` at the next fetch; batches of it fetched before are stale
   * (not handed to the handler). Used when output that a batch's records led to failed after the
   * handler had returned: their records must be read again, and nothing else would read them before
   * the next group join. Does nothing when the consumer does not run or the partition is not ours.
   */
  rewind(partition: number, offset: bigint): void {
    try {
      this.consumer.seek({ topic: this.topic, partition, offset: offset.toString() });
    } catch (error) {
      this.#opts.logger.debug("Cannot rewind the partition: the next join reads it again", {
        partition,
        error,
      });
    }
  }

  /**
   * Resolves while this member still belongs to its group's current generation: a heartbeat
   * succeeded less than a heartbeat interval ago, or one sent now does. Rejects (kafkajs's
   * REBALANCE_IN_PROGRESS, UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION) once the group went on without it,
   * e.g. after it missed heartbeats for a session timeout while a slow batch ran: its partitions may
   * belong to another member by now. A transaction checks it last, because the broker does not:
   * kafkajs commits offsets in a transaction without the member's generation (no KIP-447), so an
   * evicted member's commit went through while the new owner processed the same records again
   * (34,846 duplicate alerts of 90,000 when instances joined and left under load).
   */
  async confirmMember(): Promise<void> {
    await this.#heartbeat?.();
  }

  /**
   * kafkajs found the partition's offset out of range and went on at the earliest record left: what
   * lay between was deleted unread. Reported in one log line, a metric and `onGap` (the DLQ).
   */
  async #reportGap(partition: number, firstOffset: string): Promise<void> {
    const reset = this.#reset.get(partition) ?? null;
    const from = reset ?? this.#committedBefore.get(partition) ?? null;
    const first = BigInt(firstOffset);
    // Taken before the report, so a report that overlaps this one (a join, a stop, the partition's
    // batch) does not say the same gap again; given back if the report fails.
    this.#reset.delete(partition);
    if (from !== null && first > from) {
      const gap: OffsetGap = {
        topic: this.topic,
        partition,
        from: from.toString(),
        to: (first - 1n).toString(),
        records: Number(first - from),
      };
      try {
        await this.#opts.onGap?.(gap);
      } catch (err) {
        if (!this.#reset.has(partition)) this.#reset.set(partition, reset);
        throw err;
      }
      this.deletedUnread.set(partition, (this.deletedUnread.get(partition) ?? 0) + gap.records);
      this.#opts.logger.error("Records were deleted before they were read", { group: this.groupId, ...gap });
    }
  }

  async #readCommitted(): Promise<void> {
    this.#committedBefore = await this.#fetchCommitted();
  }

  /** The group's committed offsets of the topic, by partition (none: nothing committed, or "earliest"). */
  async #fetchCommitted(): Promise<Map<number, bigint>> {
    const admin = this.#opts.kafka.admin();
    await admin.connect();
    try {
      const [t] = await admin.fetchOffsets({ groupId: this.groupId, topics: [this.topic] });
      const committed = new Map<number, bigint>();
      for (const p of t?.partitions ?? []) {
        // -1: nothing committed; -2: kafkajs's "earliest" after an out-of-range offset.
        if (BigInt(p.offset) >= 0n) committed.set(p.partition, BigInt(p.offset));
      }
      return committed;
    } finally {
      await admin.disconnect();
    }
  }

  /**
   * Gaps kafkajs found that no batch reported, because this member stopped or lost the partition
   * before the partition's first batch after the reset: reported now, up to the partition's first
   * offset. kafkajs committed "earliest" in place of the offset it could not read, so no other
   * member can tell; unless that commit did not go through (the group's offset is still the one
   * out of range): then the partition's next reader finds the gap itself.
   */
  async #reportUnclaimed(keep: readonly number[]): Promise<void> {
    const left = [...this.#reset.keys()].filter((p) => !keep.includes(p));
    if (left.length === 0) return;
    // Out of range because the topic was created again (which clears the resets): no gap.
    if (await this.#confirmTopic() === null) return;
    const committed = await this.#fetchCommitted();
    const starts = await this.#firstOffsets();
    for (const p of left) {
      if (!this.#reset.has(p)) continue;
      const from = this.#reset.get(p) ?? this.#committedBefore.get(p) ?? null;
      if (from !== null && committed.get(p) === from) this.#reset.delete(p);
      else await this.#reportGap(p, (starts.get(p) ?? 0n).toString());
    }
  }

  /**
   * Holds `partition` back: it is paused, and resumed after `forMs` so that its next batch makes the
   * handler look again (which holds it again, or `release`s it). A handler that throws at every batch
   * of a partition it refuses had kafkajs fetch it again at once, each time with an error line: one
   * a second and more, for as long as the refusal lasted.
   */
  hold(partition: number, why: string, forMs: number): void {
    if (this.#stopping) return;
    this.held.set(partition, why);
    clearTimeout(this.#holdTimers.get(partition));
    this.#pausePartition(partition, true);
    this.#holdTimers.set(
      partition,
      setTimeout(() => {
        this.#holdTimers.delete(partition);
        this.#pausePartition(partition, false);
      }, forMs),
    );
  }

  /** Ends a hold of `partition` (its handler took it, or it is no longer this member's). */
  release(partition: number): void {
    if (!this.held.delete(partition)) return;
    const timer = this.#holdTimers.get(partition);
    if (timer === undefined) return;
    clearTimeout(timer);
    this.#holdTimers.delete(partition);
    this.#pausePartition(partition, false);
  }

  #pausePartition(partition: number, pause: boolean): void {
    // While the whole topic is held paused, its resume restores the partition pauses listed here.
    const listed = this.#heldPaused;
    if (listed !== null) {
      const i = listed.indexOf(partition);
      if (pause && i < 0) listed.push(partition);
      if (!pause && i >= 0) listed.splice(i, 1);
      return;
    }
    try {
      if (pause) this.consumer.pause([{ topic: this.topic, partitions: [partition] }]);
      else this.consumer.resume([{ topic: this.topic, partitions: [partition] }]);
    } catch (error) {
      // Not running: the next start fetches it, and the handler looks again.
      this.#opts.logger.debug("Cannot pause or resume a partition", { topic: this.topic, partition, error });
    }
  }

  /** Stops fetching, lets the in-flight batch finish, commits what is durable and leaves the group. */
  async stop(): Promise<void> {
    this.#stopping = true;
    for (const timer of this.#holdTimers.values()) clearTimeout(timer);
    this.#holdTimers.clear();
    clearInterval(this.#commitTimer);
    clearInterval(this.#checkTimer);
    clearTimeout(this.#restartTimer);
    this.#unsubscribe();
    this.#untrouble();
    this.#unhook();
    await this.#settlePending();
    await this.commitNow().catch((error) =>
      this.#opts.logger.warn("Final offset commit failed", { group: this.groupId, error })
    );
    await this.consumer.disconnect();
    // Bounded: with the broker gone its admin requests would retry past the shutdown deadline.
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      this.#reportUnclaimed([]).catch((error) =>
        this.#opts.logger.warn("Cannot report records deleted unread", { group: this.groupId, error })
      ),
      new Promise<void>((r) => timer = setTimeout(r, UNCLAIMED_REPORT_MS)),
    ]);
    clearTimeout(timer);
    // A check in flight fails with its connection: a shutdown does not wait for the broker.
    await this.#ids?.close().catch(() => {});
  }

  /** The id of the topic this member reads (null: not known yet, or not checked). */
  get topicId(): string | null {
    return this.#topicId;
  }

  /**
   * Before a batch is handled: the topic's incarnation it belongs to, after a check of the topic's
   * id when one is due (see `TOPIC_CHECK_MS`); null when the batch may be of a topic since replaced
   * or gone (it is not handled: the partition is read again from the new topic's start). A failed
   * check throws while there is reason to doubt the topic, so the batch is fetched again later.
   */
  async #confirmTopic(): Promise<number | null> {
    const incarnation = this.#incarnation;
    if (this.#ids === null) return incarnation;
    const arrived = performance.now();
    const doubt = this.#suspect || this.#gone;
    // Overdue, but checks are failing (e.g. a broker that answers fetches and not this request):
    // batches do not each wait for one more failure; the next interval's check tries again.
    const overdue = arrived - this.#verifiedAt > 2 * TOPIC_CHECK_MS &&
      arrived - this.#failedAt > TOPIC_CHECK_MS;
    if (doubt || overdue) {
      try {
        await this.#check(arrived);
      } catch (err) {
        this.#failedAt = performance.now();
        if (this.#suspect || this.#gone) throw err;
        this.#opts.logger.debug("Cannot read the topic's id: the batch is handled unchecked", {
          topic: this.topic,
          error: err,
        });
      }
    }
    return this.#incarnation === incarnation && !this.#gone ? incarnation : null;
  }

  /** Checks the topic's id: resolves once a check that started at or after `since` ended. */
  #check(since: number): Promise<void> {
    if (this.#ids === null) return Promise.resolve();
    const current = this.#checking;
    if (current !== null && current.started >= since) return current.done;
    const started = performance.now();
    const done = (current?.done ?? Promise.resolve()).catch(() => {}).then(() => this.#checkOnce(started));
    const entry = { started, done };
    this.#checking = entry;
    const clear = () => {
      if (this.#checking === entry) this.#checking = null;
    };
    done.then(clear, clear);
    return done;
  }

  async #checkOnce(started: number): Promise<void> {
    if (this.#stopping) return;
    const id = await this.#ids!.read(this.topic);
    if (id === null) {
      // Deleted (perhaps to be created again): nothing is read until the topic is back.
      this.#suspect = true;
      if (!this.#gone) {
        this.#gone = true;
        this.#pause(true);
        this.#opts.logger.warn("The topic is gone: reading waits until it exists again", {
          group: this.groupId,
          topic: this.topic,
        });
      }
      return;
    }
    if (this.#topicId === null) this.#topicId = id;
    else if (id !== this.#topicId) await this.#recreated(id);
    if (this.#gone) {
      this.#gone = false;
      this.#pause(false);
    }
    this.#verifiedAt = started;
    this.#suspect = false;
  }

  /**
   * Pauses or resumes the whole topic while it is gone or being replaced. kafkajs's topic-wide pause
   * and resume forget partitions paused one by one (the notifier stage's receivers that are full), so
   * those are paused again after the resume. Batches are gated by the checks, not by this: a pause only
   * saves fetches.
   */
  #pause(pause: boolean): void {
    try {
      if (pause) {
        if (this.#heldPaused !== null) return;
        this.#heldPaused = this.consumer.paused().find((t) => t.topic === this.topic)?.partitions ?? [];
        this.consumer.pause([{ topic: this.topic }]);
        return;
      }
      const held = this.#heldPaused;
      if (held === null) return;
      this.#heldPaused = null;
      this.consumer.resume([{ topic: this.topic }]);
      if (held.length > 0) this.consumer.pause([{ topic: this.topic, partitions: held }]);
    } catch (error) {
      // Not running: the next start reads from the committed offsets.
      this.#opts.logger.debug("Cannot pause or resume the topic", { topic: this.topic, error });
    }
  }

  /**
   * The topic was deleted and created again: its offsets start over, so every position kept of the
   * old one (kafkajs's fetch position, offsets to commit, the handler's) would skip the new topic's
   * first records, and one committed would skip them at the next join too. They are dropped, and
   * this member's partitions are read from the new topic's first offsets, which are committed at once.
   */
  async #recreated(id: string): Promise<void> {
    // Batches that arrive meanwhile wait for the check after this one, and see the new incarnation.
    // A failure below leaves the topic paused for the next check to try again.
    this.#suspect = true;
    this.#pause(true);
    const partitions = this.assigned.filter((a) => a.topic === this.topic).map((a) => a.partition);
    await this.#settlePending();
    for (
      const kept of [
        this.#done,
        this.#committed,
        this.#chain,
        this.#expected,
        this.#reset,
        this.#committedBefore,
        this.#resetReports,
      ]
    ) kept.clear();
    this.#broken.clear();
    const starts = await this.#firstOffsets();
    await this.#opts.onRecreated?.(partitions, starts);
    const mine = partitions.map((partition) => ({
      topic: this.topic,
      partition,
      offset: (starts.get(partition) ?? 0n).toString(),
    }));
    if (this.joined && mine.length > 0) {
      await this.consumer.commitOffsets(mine).catch((error) =>
        this.#opts.logger.warn(
          "Cannot commit the new topic's first offsets: they go with the partitions' next commits",
          {
            group: this.groupId,
            error,
          },
        )
      );
    }
    for (const m of mine) {
      try {
        this.consumer.seek(m);
      } catch (error) {
        this.#opts.logger.debug("Cannot seek the partition: the next join reads it again", { ...m, error });
      }
    }
    this.#opts.logger.error(
      "The topic was deleted and created again: reading the new one from its start, offsets of the old one dropped",
      {
        group: this.groupId,
        topic: this.topic,
        old_id: this.#topicId,
        new_id: id,
        partitions: partitions.join(","),
      },
    );
    // Only now: a batch that took the incarnation before this point was fetched before the seek, and
    // state checkpointed before it holds the old topic's offsets.
    this.#topicId = id;
    this.#incarnation++;
    this.recreations++;
    this.#pause(false);
  }

  /** The first offset of each partition of the topic (0 unless records were deleted already). */
  async #firstOffsets(): Promise<Map<number, bigint>> {
    const admin = this.#opts.kafka.admin();
    await admin.connect();
    try {
      const offsets = await admin.fetchTopicOffsets(this.topic);
      return new Map(offsets.map((o) => [o.partition, BigInt(o.low)]));
    } finally {
      await admin.disconnect();
    }
  }

  /**
   * Waits for pending outputs, at most `maxWaitMs` (`stopGraceMs`): with the broker gone a produce retries until the
   * output is closed, and a shutdown must not hang on it (those batches are read again after a restart).
   * No longer than `settled`, when given: the handler says what else is not worth waiting for.
   */
  async #settlePending(maxWaitMs = this.#opts.stopGraceMs ?? 10_000, settled?: Promise<void>): Promise<void> {
    if (this.#pending.size === 0) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const grace = new Promise<void>((r) => timer = setTimeout(r, maxWaitMs));
    await Promise.race([Promise.allSettled([...this.#pending]), grace, ...(settled ? [settled] : [])]);
    clearTimeout(timer);
  }

  /** Remembers a batch's next offset, to be committed once `durable` (null: now) and every earlier batch are. */
  #track(partition: number, lastOffset: string, durable: Promise<void> | null, incarnation: number): void {
    if (this.#broken.has(partition)) {
      durable?.catch(() => {});
      return;
    }
    const next = (BigInt(lastOffset) + 1n).toString();
    const prev = this.#chain.get(partition);
    if (durable === null && prev === undefined) {
      this.#advance(partition, next);
      return;
    }
    const link: Promise<void> = Promise.all([prev, durable]).then(() => {
      if (this.#chain.get(partition) === link) this.#chain.delete(partition);
      // A rebalance may have taken the partition meanwhile: its new owner commits it. An offset of
      // a topic since replaced is not the new topic's.
      if (
        incarnation === this.#incarnation &&
        this.assigned.some((a) => a.partition === partition && a.topic === this.topic)
      ) {
        this.#advance(partition, next);
      }
    });
    this.#chain.set(partition, link);
    const tracked = link.catch((error) => {
      if (this.#chain.get(partition) === link) this.#chain.delete(partition);
      if (this.#broken.has(partition)) {
        durable?.catch(() => {});
        return;
      }
      // Nothing after the failed batch may be committed. After the next group join kafkajs reads
      // from the committed offset again; until then the partition's offset stays put.
      this.#broken.add(partition);
      if (!this.#stopping) {
        this.#opts.logger.error(
          "A batch's output failed: its partition is not committed until the next join",
          {
            group: this.groupId,
            partition,
            error,
          },
        );
      }
    }).finally(() => this.#pending.delete(tracked));
    this.#pending.add(tracked);
  }

  /**
   * Moves a partition's committable offset forward, never back: after a rejoin kafkajs reads from the
   * last commit again, and those batches must not pull back an offset that is durable already.
   */
  #advance(partition: number, next: string): void {
    const prev = this.#done.get(partition);
    if (prev === undefined || BigInt(next) > BigInt(prev)) this.#done.set(partition, next);
  }

  /** Commits the durable offsets of assigned partitions the broker does not have yet (one request). */
  commitNow(): Promise<void> {
    const run = async (): Promise<void> => {
      const partitions = [...this.#done]
        .filter(([p, offset]) => this.#committed.get(p) !== offset)
        .map(([partition, offset]) => ({ topic: this.topic, partition, offset }));
      if (partitions.length === 0 || !this.joined) return;
      await this.consumer.commitOffsets(partitions);
      for (const { partition, offset } of partitions) this.#committed.set(partition, offset);
    };
    // One commit at a time; a call during a commit runs once more after it, for what came meanwhile.
    const next: Promise<void> = (this.#committing ?? Promise.resolve()).catch(() => {}).then(run);
    this.#committing = next;
    return next.finally(() => {
      if (this.#committing === next) this.#committing = null;
    });
  }
}
