/**
 * Consumer lag per partition, as the broker sees it: the partition's end offset minus the group's
 * committed offset. Read at scrape time through one admin connection and cached briefly, so many
 * scrapers (Prometheus, the dashboard) cost the broker one pair of requests per interval.
 *
 * @module
 */
import type { Admin, Kafka } from "kafkajs";

export interface PartitionLag {
  group: string;
  topic: string;
  partition: number;
  /** End offset minus committed offset; with no commit yet, everything still in the partition. */
  lag: number;
}

export interface ConsumerLagOptions {
  client: Kafka;
  groups: readonly { group: string; topic: string }[];
  cacheMs?: number;
}

/** Lag of `group` on every partition of `topic`, read from the broker. */
export async function fetchLag(admin: Admin, group: string, topic: string): Promise<PartitionLag[]> {
  const [ends, committed] = await Promise.all([
    admin.fetchTopicOffsets(topic),
    admin.fetchOffsets({ groupId: group, topics: [topic] }),
  ]);
  const byPartition = new Map(
    (committed[0]?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]),
  );
  return ends.map((end) => {
    const c = byPartition.get(end.partition) ?? -1;
    // No commit (-1) means the group starts at the oldest record still kept.
    const from = c < 0 ? Number(end.low) : c;
    return { group, topic, partition: end.partition, lag: Math.max(0, Number(end.high) - from) };
  }).sort((a, b) => a.partition - b.partition);
}

export class ConsumerLag {
  readonly #opts: ConsumerLagOptions;
  #admin: Admin | null = null;
  #connecting: Promise<Admin> | null = null;
  #cached: { at: number; value: Promise<PartitionLag[]> } | null = null;
  #closed = false;

  constructor(opts: ConsumerLagOptions) {
    this.#opts = opts;
  }

  /** Lag of every group of this process; a failed read is not cached, the next scrape retries. */
  read(): Promise<PartitionLag[]> {
    const now = Date.now();
    if (this.#cached !== null && now - this.#cached.at < (this.#opts.cacheMs ?? 1500)) {
      return this.#cached.value;
    }
    const value = this.#read();
    const entry = { at: now, value };
    this.#cached = entry;
    value.catch(() => {
      if (this.#cached === entry) this.#cached = null;
    });
    return value;
  }

  async #read(): Promise<PartitionLag[]> {
    const admin = await this.#connect();
    const lists = await Promise.all(this.#opts.groups.map((g) => fetchLag(admin, g.group, g.topic)));
    return lists.flat();
  }

  #connect(): Promise<Admin> {
    if (this.#closed) return Promise.reject(new Error("Consumer lag reader is closed"));
    return this.#connecting ??= (async () => {
      const admin = this.#opts.client.admin();
      try {
        await admin.connect();
      } catch (err) {
        this.#connecting = null;
        throw err;
      }
      this.#admin = admin;
      return admin;
    })();
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#connecting?.catch(() => {});
    await this.#admin?.disconnect();
  }
}
