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
 * Where the engine writes. `send` resolves only once every record is durable (acknowledged by the
 * broker's in-sync replicas, or written to the local file), which is what lets the caller commit.
 */
export interface Output {
  send(records: OutRecord[]): Promise<void>;
  close(): Promise<void>;
}
