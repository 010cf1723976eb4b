/** A record for one of the service's output topics (alerts, DLQ, aggregates). */
export interface OutRecord {
  topic: string;
  key: string | null;
  /** null: a tombstone (the state changelog's way to forget a key). */
  value: string | null;
  /** An explicit partition (the state changelog mirrors the input partition); default: by key. */
  partition?: number;
}

/**
 * What stands for a record the broker refused on its own for its size (MESSAGE_TOO_LARGE): a smaller
 * record (its failure in the DLQ; a DLQ record without its original value), or null when nothing
 * smaller can. `problem` says what the broker answered and the record's size.
 */
export type ShrinkRecord = (record: OutRecord, problem: string) => OutRecord | null;

/**
 * Where the engine writes. `send` resolves only once every record is durable (acknowledged by the
 * broker's in-sync replicas, or written to the local file), which is what lets the caller commit.
 */
export interface Output {
  send(records: OutRecord[]): Promise<void>;
  close(): Promise<void>;
}
