import type { Consumer, Kafka } from "kafkajs";
import type { Logger } from "../log.ts";
import type { InputRecord } from "../pipeline.ts";

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
  /** After every group join, with this member's partitions of `topic`. */
  onAssign?(partitions: number[]): void;
}

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
  #restarts = 0;

  constructor(opts: ConsumerOptions) {
    this.#opts = opts;
    this.groupId = opts.groupId;
    this.topic = opts.topic;
    this.consumer = opts.kafka.consumer({
      groupId: opts.groupId,
      allowAutoTopicCreation: false,
      maxBytesPerPartition: opts.maxBytesPerPartition ?? 1024 * 1024,
      maxWaitTimeInMs: 100,
      sessionTimeout: opts.sessionTimeoutMs ?? 30000,
      heartbeatInterval: Math.min(3000, Math.floor((opts.sessionTimeoutMs ?? 30000) / 3)),
      retry: { retries: 10 },
    });
    const { GROUP_JOIN, CRASH, STOP } = this.consumer.events;
    this.consumer.on(GROUP_JOIN, (e) => {
      this.joined = true;
      const assignment = e.payload.memberAssignment as Record<string, number[]>;
      this.assigned = Object.entries(assignment).flatMap(([topic, ps]) =>
        ps.map((partition) => ({ topic, partition }))
      );
      opts.onAssign?.(this.assigned.filter((a) => a.topic === opts.topic).map((a) => a.partition));
      opts.logger.info("Joined consumer group", {
        group: opts.groupId,
        partitions: this.assigned.map((a) => a.partition).join(","),
      });
    });
    this.consumer.on(CRASH, (e) => {
      this.#crashed = e.payload.error;
      opts.logger.error("Consumer crashed", {
        group: opts.groupId,
        error: e.payload.error,
        restart: e.payload.restart,
      });
      // kafkajs gives up on errors it deems permanent; the stream must not stop for good, so start
      // over from the committed offsets after a pause (bounded backoff, no tight crash loop).
      if (!e.payload.restart && !this.#stopping) {
        const delay = Math.min(30_000, 1000 * 2 ** Math.min(this.#restarts++, 5));
        setTimeout(() => {
          if (this.#stopping) return;
          this.#run().catch((err) =>
            opts.logger.error("Consumer restart failed", { group: opts.groupId, error: err })
          );
        }, delay);
      }
    });
    this.consumer.on(STOP, () => {
      this.joined = false;
    });
  }

  get crashed(): Error | null {
    return this.#crashed;
  }

  async start(): Promise<void> {
    await this.#run();
  }

  async #run(): Promise<void> {
    const { topic, handle, logger } = this.#opts;
    if (this.#crashed !== null) {
      logger.warn("Restarting the consumer", { group: this.groupId });
      await this.consumer.disconnect().catch(() => {});
    }
    await this.consumer.connect();
    await this.consumer.subscribe({ topics: [topic], fromBeginning: this.#opts.fromBeginning ?? true });
    await this.consumer.run({
      autoCommit: this.#opts.autoCommit ?? true,
      autoCommitInterval: 1000,
      eachBatchAutoResolve: false,
      // Batches of different partitions overlap their produce and commit round trips; evaluation is
      // synchronous, so the engine still sees one batch at a time, and each partition stays in order.
      partitionsConsumedConcurrently: 6,
      eachBatch: async (
        { batch, resolveOffset, heartbeat, commitOffsetsIfNecessary, isRunning, isStale },
      ) => {
        if (batch.messages.length === 0 || !isRunning() || isStale()) return;
        const records: InputRecord[] = batch.messages.map((m) => ({
          topic: batch.topic,
          partition: batch.partition,
          offset: m.offset,
          key: m.key === null ? null : m.key.toString("utf8"),
          value: m.value,
        }));
        const lastOffset = batch.lastOffset();
        await handle(records, { heartbeat, isRunning, lastOffset });
        resolveOffset(lastOffset);
        if (this.#opts.autoCommit ?? true) {
          // Commit now, not on the next batch: an idle stream must not keep a lag it has processed.
          const next = (BigInt(lastOffset) + 1n).toString();
          await commitOffsetsIfNecessary({
            topics: [{ topic, partitions: [{ partition: batch.partition, offset: next }] }],
          });
        }
        await heartbeat();
        logger.debug("Batch done", { topic, partition: batch.partition, offset: batch.lastOffset() });
      },
    });
  }

  /** Stops fetching, lets the in-flight batch finish, commits resolved offsets and leaves the group. */
  async stop(): Promise<void> {
    this.#stopping = true;
    await this.consumer.disconnect();
  }
}
