/**
 * Reads the events topic between two record times, outside the service's consumer group: a consumer
 * of a throwaway group that never commits, started at the offsets the broker gives for `from` and
 * stopped at those of `to`; the group is deleted afterwards, so the broker keeps nothing of the read.
 *
 * @module
 */
import type { Admin, Kafka } from "kafkajs";
import type { InputRecord } from "../contract/records.ts";
import type { Logger } from "../log.ts";

export interface RangeOptions {
  kafka: Kafka;
  topic: string;
  /** Epoch ms, or null for the beginning of the topic. */
  from: number | null;
  /** Epoch ms (exclusive), or null for now (the end offsets at the start). */
  to: number | null;
  logger: Logger;
  /** The group's id; default `backtest-<random>`. */
  groupId?: string;
  /**
   * At most this many records: each partition gives up its oldest, in proportion to its share of the
   * range, so what is read is the newest of every partition. Default: no bound.
   */
  maxRecords?: number;
}

/** Per partition: the first offset to read and the offset to stop before. */
export type Range = Map<number, { start: bigint; end: bigint }>;

/**
 * `range` with at most `max` records, the newest of each partition kept in proportion to its share
 * (rounded down, so the sum stays within `max`); `capped` when anything was left out.
 */
export function newestOf(range: Range, max: number): { range: Range; capped: boolean } {
  let total = 0n;
  for (const r of range.values()) total += r.end - r.start;
  const limit = BigInt(Math.max(0, Math.floor(max)));
  if (total <= limit) return { range, capped: false };
  const out: Range = new Map();
  for (const [p, r] of range) {
    const keep = (r.end - r.start) * limit / total;
    out.set(p, { start: r.end - keep, end: r.end });
  }
  return { range: out, capped: true };
}

/** The offsets of `[from, to)` per partition, as the broker maps record times to offsets. */
export async function offsetRange(
  admin: Admin,
  topic: string,
  from: number | null,
  to: number | null,
): Promise<Range> {
  const high = await admin.fetchTopicOffsets(topic);
  const at = async (t: number | null, fallback: (p: (typeof high)[number]) => string) => {
    const out = new Map<number, bigint>();
    const list = t === null ? [] : await admin.fetchTopicOffsetsByTimestamp(topic, t);
    for (const p of high) {
      const found = list.find((x) => x.partition === p.partition)?.offset;
      // -1: no record at or after `t`: the range stops (or starts) at the end of the partition.
      const offset = t === null ? fallback(p) : found === undefined || found === "-1" ? p.high : found;
      out.set(p.partition, BigInt(offset));
    }
    return out;
  };
  const starts = await at(from, (p) => p.low);
  const ends = await at(to, (p) => p.high);
  const range: Range = new Map();
  for (const [p, start] of starts) {
    const end = ends.get(p)!;
    range.set(p, { start, end: end > start ? end : start });
  }
  return range;
}

export interface RangeReader {
  /** Records in the range, by batch of one partition; ends when every partition reached its end. */
  batches: AsyncIterable<InputRecord[]>;
  /** Records in the range (an upper bound: transaction markers take offsets too). */
  total: bigint;
  /** `maxRecords` left the oldest records of the range out. */
  capped: boolean;
  /** Stops reading; the iteration ends. Also what the end of `batches` does. */
  close(): Promise<void>;
}

export async function readRange(opts: RangeOptions): Promise<RangeReader> {
  const { kafka, topic, logger } = opts;
  const groupId = opts.groupId ?? `backtest-${crypto.randomUUID()}`;
  const admin = kafka.admin();
  await admin.connect();
  let range: Range;
  let capped = false;
  try {
    range = await offsetRange(admin, topic, opts.from, opts.to);
    if (opts.maxRecords !== undefined) ({ range, capped } = newestOf(range, opts.maxRecords));
  } catch (err) {
    await admin.disconnect().catch(() => {});
    throw err;
  }
  let total = 0n;
  const pending = new Set<number>();
  for (const [p, r] of range) {
    total += r.end - r.start;
    if (r.end > r.start) pending.add(p);
  }
  logger.debug("Backtest range", {
    topic,
    group: groupId,
    partitions: Object.fromEntries([...range].map(([p, r]) => [p, `${r.start}..${r.end}`])),
  });

  // One batch handed over at a time: the consumer waits for the engine, so memory stays one batch.
  let handOver: ((batch: InputRecord[] | null) => void) | null = null;
  let taken: (() => void) | null = null;
  const queue: (InputRecord[] | null)[] = [];
  const put = (b: InputRecord[] | null) => {
    if (handOver !== null) {
      const h = handOver;
      handOver = null;
      h(b);
    } else queue.push(b);
  };
  let failure: unknown = null;
  let closed = false;
  const consumer = pending.size === 0 ? null : kafka.consumer({
    groupId,
    // The service's own timing; nothing is committed, so a rebalance only re-reads from `start`.
    sessionTimeout: 30_000,
    allowAutoTopicCreation: false,
  });
  const finish = async () => {
    if (closed) return;
    closed = true;
    // A batch waiting to be taken is let go, and a reader waiting for one gets the end.
    (taken as (() => void) | null)?.();
    taken = null;
    put(null);
    try {
      await consumer?.disconnect();
    } finally {
      // A group that never committed holds no offsets; deleting it leaves not even its name.
      if (consumer !== null) {
        await admin.deleteGroups([groupId]).catch((error) =>
          logger.warn("Could not delete the backtest's consumer group", { group: groupId, error })
        );
      }
      await admin.disconnect().catch(() => {});
    }
  };
  if (consumer !== null) {
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch, isRunning, isStale, heartbeat }) => {
        const r = range.get(batch.partition);
        if (r === undefined || !pending.has(batch.partition) || !isRunning() || isStale()) return;
        const records: InputRecord[] = [];
        for (const m of batch.messages) {
          const offset = BigInt(m.offset);
          if (offset < r.start || offset >= r.end) continue;
          records.push({
            topic: batch.topic,
            partition: batch.partition,
            offset: m.offset,
            key: m.key === null ? null : m.key.toString("utf8"),
            value: m.value,
          });
        }
        // Past transaction markers too: the batch's last offset counts, not its last record's.
        if (BigInt(batch.lastOffset()) >= r.end - 1n) pending.delete(batch.partition);
        else if (
          BigInt(batch.highWatermark) <= r.end &&
          BigInt(batch.lastOffset()) + 1n >= BigInt(batch.highWatermark)
        ) {
          pending.delete(batch.partition);
        }
        if (records.length > 0) {
          await new Promise<void>((resolve) => {
            taken = resolve;
            put(records);
          });
          await heartbeat();
        }
        if (pending.size === 0) put(null);
      },
    });
    consumer.on(consumer.events.CRASH, (e) => {
      failure = e.payload.error;
      put(null);
    });
    for (const [partition, r] of range) {
      if (r.end > r.start) consumer.seek({ topic, partition, offset: String(r.start) });
    }
  }

  async function* batches(): AsyncGenerator<InputRecord[]> {
    try {
      if (consumer === null) return;
      for (;;) {
        const next = queue.length > 0
          ? queue.shift()!
          : await new Promise<InputRecord[] | null>((r) => handOver = r);
        if (next === null) break;
        const t = taken as (() => void) | null;
        taken = null;
        yield next;
        t?.();
      }
      if (failure !== null) {
        throw new Error(`Reading "${topic}" failed: ${(failure as Error)?.message ?? String(failure)}`, {
          cause: failure,
        });
      }
    } finally {
      (taken as (() => void) | null)?.();
      await finish();
    }
  }
  return { batches: batches(), total, capped, close: finish };
}
