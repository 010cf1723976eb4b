import type { Kafka, TopicOffsets } from "kafkajs";
import type { Logger } from "../log.ts";
import type { OutRecord, ShrinkRecord } from "./output.ts";
import { TransactionalOutput } from "./transactional.ts";

/**
 * The transactional id of input partition `partition` of `topic` in consumer group `groupId`: the
 * same in every process, worker and restart, so the partition's next owner opens its producer under
 * the id the previous owner used, and its InitProducerId aborts and fences whatever transaction that
 * owner left open (the scheme of Kafka Streams before KIP-447). Nothing of the instance is in it: two
 * members never own the same partition, so they never share an id.
 */
export function partitionTransactionalId(groupId: string, topic: string, partition: number): string {
  return `${groupId}-${topic}-${partition}`;
}

export interface PartitionTransactionsOptions {
  groupId: string;
  /** The input topic whose partitions the transactions answer for. */
  topic: string;
  logger: Logger;
  /** A transaction of `partition` failed: its state may hold changes no transaction committed. */
  onFailure(partition: number, err: Error): void;
  /** Last thing before a transaction commits; a rejection aborts it. */
  beforeCommit?: () => Promise<void>;
  /** Records added to each transaction of `partition` as it starts (see `TransactionalOutput`). */
  supplement?: (partition: number) => OutRecord[];
  /** What stands for a record the broker refuses on its own for its size (see `ShrinkRecord`). */
  shrink?: ShrinkRecord;
  /**
   * Producers open at once (default 32). Each holds its own broker connections; past this many, the
   * one used least recently is closed when idle and opened again when its partition needs it.
   */
  maxOpen?: number;
}

/**
 * One transactional producer per input partition: a partition's output and its consumer offset are
 * committed in that partition's transaction, so partitions commit side by side instead of in one
 * transaction for all of them, and a partition that moves takes its fencing with it.
 */
export class PartitionTransactions {
  readonly #kafka: Kafka;
  readonly #opts: PartitionTransactionsOptions;
  /** Open producers, least recently used first. */
  readonly #open = new Map<number, TransactionalOutput>();
  /** Producers being closed: a partition's new producer waits for its old one to be gone. */
  readonly #closing = new Map<number, Promise<void>>();
  /** Transactions committed by producers already closed. */
  #closedTransactions = 0;

  constructor(kafka: Kafka, opts: PartitionTransactionsOptions) {
    this.#kafka = kafka;
    this.#opts = opts;
  }

  /** Transactions committed so far, all partitions together. */
  get transactions(): number {
    let n = this.#closedTransactions;
    for (const o of this.#open.values()) n += o.transactions;
    return n;
  }

  /** Partitions with an open producer. */
  get partitions(): number[] {
    return [...this.#open.keys()];
  }

  /**
   * Opens `partition`'s producer: its InitProducerId fences the previous owner, and once it resolves
   * the previous owner's transaction is committed or aborted for good (its state can be read).
   */
  async open(partition: number): Promise<void> {
    await this.#producer(partition).connect();
  }

  /** Commits `records` and the consumer `offsets` of `partition` in one transaction of its own. */
  commit(partition: number, records: OutRecord[], offsets: TopicOffsets[]): Promise<void> {
    return this.#producer(partition).commit(records, offsets);
  }

  /** Closes the producers of partitions not in `partitions` (they moved to another member). */
  retain(partitions: readonly number[]): Promise<void> {
    const keep = new Set(partitions);
    return Promise.all(this.partitions.filter((p) => !keep.has(p)).map((p) => this.close(p))).then(() => {});
  }

  /** Closes `partition`'s producer once its transactions in flight ended. */
  close(partition: number): Promise<void> {
    const output = this.#open.get(partition);
    if (output === undefined) return this.#closing.get(partition) ?? Promise.resolve();
    this.#open.delete(partition);
    const closed = output.close()
      .catch((error) => this.#opts.logger.warn("Cannot close a transactional producer", { partition, error }))
      .finally(() => {
        this.#closedTransactions += output.transactions;
        if (this.#closing.get(partition) === closed) this.#closing.delete(partition);
      });
    this.#closing.set(partition, closed);
    return closed;
  }

  /** Every producer uses a new connection from its next transaction on (see `renewProducer`). */
  renewProducers(): void {
    for (const o of this.#open.values()) o.renewProducer();
  }

  async closeAll(): Promise<void> {
    await Promise.all(this.partitions.map((p) => this.close(p)));
    await Promise.all(this.#closing.values());
  }

  #producer(partition: number): TransactionalOutput {
    let output = this.#open.get(partition);
    if (output !== undefined) {
      // Most recently used goes last.
      this.#open.delete(partition);
      this.#open.set(partition, output);
      return output;
    }
    const { groupId, topic, logger, onFailure, beforeCommit, supplement, shrink } = this.#opts;
    const maxOpen = this.#opts.maxOpen ?? 32;
    for (const p of this.#open.keys()) {
      if (this.#open.size < maxOpen) break;
      this.close(p);
    }
    const closing = this.#closing.get(partition);
    output = new TransactionalOutput(this.#kafka, {
      transactionalId: partitionTransactionalId(groupId, topic, partition),
      groupId,
      logger: logger.child({ partition }),
      onFailure: (err) => onFailure(partition, err),
      // The partition's previous producer in this process must be gone before this one fences it.
      ...(closing === undefined ? {} : { before: closing }),
      ...(beforeCommit === undefined ? {} : { beforeCommit }),
      ...(supplement === undefined ? {} : { supplement: () => supplement(partition) }),
      ...(shrink === undefined ? {} : { shrink }),
    });
    this.#open.set(partition, output);
    return output;
  }
}
