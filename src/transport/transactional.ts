import { setImmediate } from "node:timers";
import type { Kafka, Producer, TopicOffsets } from "kafkajs";
import { Partitioners } from "kafkajs";
import type { Logger } from "../log.ts";
import { chunkRecords, ChunkResizer, errorTypes, isTooLarge, kafkaProblem, topicMessages } from "./kafka.ts";
import type { Output, OutRecord, ShrinkRecord } from "./output.ts";

interface Job {
  records: OutRecord[];
  offsets: TopicOffsets[];
  resolve(): void;
  reject(err: Error): void;
}

/**
 * Exactly-once output: records and the consumer offsets they answer for are committed in one Kafka
 * transaction, so after a crash either both happened or neither did. Calls that arrive while a
 * transaction is in flight are committed together in the next one (a group commit), which keeps the
 * number of transactions per second bounded whatever the number of partitions.
 */
export class TransactionalOutput implements Output {
  readonly #kafka: Kafka;
  readonly #transactionalId: string;
  readonly #groupId: string;
  readonly #logger: Logger;
  readonly #onFailure: (err: Error) => void;
  readonly #beforeCommit: () => Promise<void>;
  readonly #supplement: () => OutRecord[];
  readonly #shrink: ShrinkRecord | undefined;
  readonly #before: Promise<void>;
  #producer: Producer | null = null;
  #connecting: Promise<void> | null = null;
  #queue: Job[] = [];
  #running: Promise<void> | null = null;
  #renew = false;
  /** Set by `close`: the partition may be another member's by now. */
  #closed = false;
  transactions = 0;

  constructor(
    kafka: Kafka,
    opts: {
      transactionalId: string;
      groupId: string;
      logger: Logger;
      onFailure: (err: Error) => void;
      /**
       * Last thing before a transaction commits; a rejection aborts it (the engine: this member still
       * owns its partitions, see `KafkaSource.confirmMember`).
       */
      beforeCommit?: () => Promise<void>;
      /** Resolves when the producer may connect (a previous one of the same id is closed). */
      before?: Promise<void>;
      /**
       * Records added to each transaction, taken as it starts: the engine's state changes since the
       * last one, which then answer for exactly the commits the transaction carries (a piece of state
       * changed by several of them is written once).
       */
      supplement?: () => OutRecord[];
      /** What stands for a record the broker refuses on its own for its size (none: the transaction fails). */
      shrink?: ShrinkRecord;
    },
  ) {
    this.#kafka = kafka;
    this.#transactionalId = opts.transactionalId;
    this.#groupId = opts.groupId;
    this.#logger = opts.logger;
    this.#onFailure = opts.onFailure;
    this.#beforeCommit = opts.beforeCommit ?? (() => Promise.resolve());
    this.#before = opts.before ?? Promise.resolve();
    this.#supplement = opts.supplement ?? (() => []);
    this.#shrink = opts.shrink;
  }

  /** Connects, which fences any other producer with the same transactional id (InitProducerId). */
  connect(): Promise<void> {
    // Called from both the first commit and an eager open: one producer, whoever calls first.
    return this.#connecting ??= this.#connect().catch((err) => {
      this.#connecting = null;
      throw err;
    });
  }

  async #connect(): Promise<void> {
    await this.#before;
    const producer = this.#kafka.producer({
      transactionalId: this.#transactionalId,
      idempotent: true,
      maxInFlightRequests: 1,
      // The next owner's InitProducerId aborts an open transaction of the partition's previous owner
      // at once; the timeout ends one whose partition no member picked up yet.
      transactionTimeout: 15_000,
      // The broker answers CONCURRENT_TRANSACTIONS until the previous commit's markers are written
      // (1-2 ms): a first retry after 20 ms made up half of a transaction's time. About the same total
      // retry window (~30 s) for outages.
      retry: { initialRetryTime: 1, maxRetryTime: 5000, retries: 17 },
      allowAutoTopicCreation: false,
      createPartitioner: Partitioners.DefaultPartitioner,
    });
    await producer.connect();
    // kafkajs sends InitProducerId with the first transaction, not on connect: an empty transaction
    // (aborted without a request) makes connecting what fences the id's previous holder. Without it
    // a partition's next owner restored its state while the previous owner could still commit.
    await (await producer.transaction()).abort();
    this.#producer = producer;
  }

  /**
   * Uses a new producer from the next transaction on. kafkajs's producer drops records for a
   * partition its metadata does not know, without an error, and refreshes that metadata only every
   * 5 minutes: after partitions were added, a new producer is the way to make it see them.
   */
  renewProducer(): void {
    this.#renew = true;
  }

  send(records: OutRecord[]): Promise<void> {
    return records.length === 0 ? Promise.resolve() : this.commit(records, []);
  }

  /** Commits `records` and `offsets` (the next offset to read, per partition) atomically. */
  commit(records: OutRecord[], offsets: TopicOffsets[]): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ records, offsets, resolve, reject });
      this.#kick();
    });
  }

  /**
   * A commit called as the previous drain resolves its callers (they run before the drain's
   * `finally`) found it still running, and was left queued for ever: look again once it ended.
   */
  #kick(): void {
    this.#running ??= this.#drain().finally(() => {
      this.#running = null;
      if (this.#queue.length > 0) this.#kick();
    });
  }

  async #drain(): Promise<void> {
    while (this.#queue.length > 0) {
      // kafkajs hands a fetch's batches to the handlers one after the other, each synchronous up to
      // its commit: one turn of the event loop lets all of them join this transaction (it was one
      // transaction for the first batch, and a second one for the rest).
      await new Promise((r) => setImmediate(r));
      const jobs = this.#queue.splice(0);
      try {
        // In the same turn as the splice: nothing evaluated after it may slip into its state.
        const supplement = this.#supplement();
        if (this.#renew) {
          this.#renew = false;
          await this.#producer?.disconnect();
          this.#producer = null;
          this.#connecting = null;
        }
        // Commits queued before `close` end with the producer that was open; opening one again for
        // them would fence the partition's next owner, whose restore may already have read the
        // changelog (their batches are read again by that owner).
        if (this.#closed && this.#producer === null) {
          throw new Error(
            `The producer of "${this.#transactionalId}" is closed: the commit is left to the partition's next owner`,
          );
        }
        const records = jobs.flatMap((j) => j.records).concat(supplement);
        const chunks = chunkRecords(records);
        const resizer = new ChunkResizer(this.#shrink);
        // Bounded: each round that does not commit reshaped a refused chunk (see ChunkResizer).
        for (let round = 0;; round++) {
          if (round > 0 && this.#closed) {
            throw new Error(
              `The producer of "${this.#transactionalId}" is closed: the reshaped commit is left to the partition's next owner`,
            );
          }
          await this.connect();
          const txn = await this.#producer!.transaction();
          let refused: { chunk: number; err: unknown } | null = null;
          try {
            for (let i = 0; i < chunks.length; i++) {
              if (chunks[i]!.length === 0) continue;
              try {
                await txn.sendBatch({ acks: -1, topicMessages: topicMessages(chunks[i]!) });
              } catch (err) {
                if (!isTooLarge(err)) throw err;
                refused = { chunk: i, err };
                break;
              }
            }
            if (refused === null) {
              const offsets = mergeOffsets(jobs.flatMap((j) => j.offsets));
              if (offsets.length > 0) {
                await retryConcurrentTransactions(() =>
                  txn.sendOffsets({ consumerGroupId: this.#groupId, topics: offsets })
                );
              }
              await this.#beforeCommit();
              await txn.commit();
              this.transactions++;
              break;
            }
            await txn.abort();
          } catch (err) {
            await txn.abort().catch(() => {});
            throw err;
          }
          // A refused chunk would be refused again, and the recovery that follows a failed transaction
          // read the same batch again: the partition looped. The same records and offsets go in a new
          // transaction, the refused chunk reshaped; nothing the state holds changes. A new producer
          // for it: kafkajs takes back the sequence numbers of every partition of a refused request,
          // those the broker wrote too, and the next batch there would be out of sequence.
          resizer.resize(chunks, refused.chunk, refused.err);
          this.#logger.warn("A transaction's request was too large for the broker: sent again reshaped", {
            transactional_id: this.#transactionalId,
            round,
            split: resizer.split,
            replaced: resizer.replaced,
            error: kafkaProblem(refused.err),
          });
          const producer = this.#producer;
          this.#producer = null;
          this.#connecting = null;
          await producer?.disconnect().catch(() => {});
        }
        for (const j of jobs) j.resolve();
      } catch (err) {
        const error = err instanceof Error ? err : new Error(String(err));
        if (leftGroup(error)) {
          this.#logger.warn(
            "The consumer group went on without this member: its transaction is aborted, the state rebuilt",
            { group: this.#groupId, error },
          );
        } else if (isFenced(error)) {
          this.#logger.warn(
            `Another producer took the transactional id "${this.#transactionalId}" over (the partition's ` +
              `next owner) and fenced this one: its transaction is aborted`,
            { transactional_id: this.#transactionalId },
          );
        } else {
          this.#logger.error("Transaction failed: the affected state is rebuilt from the changelog", {
            error,
          });
        }
        // Whatever was queued behind the failed transaction was computed from state that is now
        // rolled back: fail it too, and start over with a fresh producer.
        // The owner hears of the failure before anything yields: a commit queued while the producer
        // disconnected was computed from that state too (it was committed with the next producer).
        const failed = [...jobs, ...this.#queue.splice(0)];
        const producer = this.#producer;
        this.#producer = null;
        this.#connecting = null;
        this.#onFailure(error);
        for (const j of failed) j.reject(error);
        await producer?.disconnect().catch(() => {});
      }
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#running;
    await this.#connecting?.catch(() => {});
    await this.#producer?.disconnect();
    this.#producer = null;
    this.#connecting = null;
  }
}

/** The member is no longer in its group's current generation (evicted, or the group rebalances). */
export function leftGroup(err: unknown): boolean {
  return errorTypes(err).some((t) =>
    t === "UNKNOWN_MEMBER_ID" || t === "ILLEGAL_GENERATION" || t === "REBALANCE_IN_PROGRESS"
  );
}

/** Another producer with the same transactional id took it over (a newer epoch). */
export function isFenced(err: unknown): boolean {
  return errorTypes(err).some((t) => t === "INVALID_PRODUCER_EPOCH" || t === "PRODUCER_FENCED");
}

/**
 * The broker answers CONCURRENT_TRANSACTIONS to a transaction's first request while it still writes
 * the previous commit's markers (1-2 ms). kafkajs retries it for AddPartitionsToTxn but not for
 * AddOffsetsToTxn, the first request of a transaction without records: it aborted 4 transactions in
 * 5 s at 500 events/s, each rebuilding state and processing its batch again.
 */
async function retryConcurrentTransactions(request: () => Promise<void>): Promise<void> {
  for (let attempt = 0;; attempt++) {
    try {
      return await request();
    } catch (err) {
      // ~5 s in all, as long as kafkajs retries the other requests.
      if (attempt >= 15 || !errorTypes(err).includes("CONCURRENT_TRANSACTIONS")) throw err;
      await new Promise((r) => setTimeout(r, Math.min(500, 2 ** attempt)));
    }
  }
}

/** One entry per topic and partition, the highest offset winning. */
function mergeOffsets(list: TopicOffsets[]): TopicOffsets[] {
  const byTopic = new Map<string, Map<number, CommittedOffset>>();
  for (const t of list) {
    let parts = byTopic.get(t.topic);
    if (parts === undefined) byTopic.set(t.topic, parts = new Map());
    for (const p of t.partitions as CommittedOffset[]) {
      const prev = parts.get(p.partition);
      if (prev === undefined || BigInt(p.offset) > BigInt(prev.offset)) parts.set(p.partition, p);
    }
  }
  return [...byTopic].map(([topic, parts]) => ({ topic, partitions: [...parts.values()] }));
}

/** A partition's offset as a transaction commits it, with its metadata (kafkajs sends it, its type omits it). */
export interface CommittedOffset {
  partition: number;
  offset: string;
  metadata?: string | null;
}
