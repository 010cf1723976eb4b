/**
 * The engine's state changelog: a compacted topic with one record per piece of state (an alert
 * episode, a group's open windows, a deadman timer) and one with the partition's recent event ids,
 * each on the same partition number as the events it came from (the Kafka Streams approach).
 *
 * @module
 */
import type { Consumer, Kafka } from "kafkajs";
import type { Logger } from "../log.ts";
import { METADATA_MAX_AGE_MS } from "../source/kafka.ts";
import type { StateEntry } from "../rules/engine.ts";
import type { OutRecord } from "../transport/output.ts";

const SEP = "\u0000";
const RECENT_IDS_KEY = "ids";
/** The input topic's partition count when the partition's state was written (keys hash modulo it). */
const INPUT_PARTITIONS_KEY = "parts";
/** The next input offset after the partition's newest processed record, whatever the group's offset says. */
const POSITION_KEY = "pos";

/**
 * Changelog records for a partition's checkpoint. An entry that cannot be serialised (decode's bounds
 * should make that impossible) is written as a tombstone and reported: a restore forgets that piece
 * of state instead of the whole transaction failing, over and over, on the same batch.
 */
export function changelogRecords(
  topic: string,
  partition: number,
  entries: readonly StateEntry[],
  recentIds: readonly string[] | null,
  onError?: (entry: StateEntry, error: Error) => void,
): OutRecord[] {
  const out: OutRecord[] = entries.map((e) => {
    let value: string | null = null;
    try {
      value = e.value === null ? null : JSON.stringify(e.value);
    } catch (err) {
      onError?.(e, err instanceof Error ? err : new Error(String(err)));
    }
    return { topic, partition, key: `${e.kind}${SEP}${e.rule}${SEP}${e.group}`, value };
  });
  if (recentIds !== null) {
    out.push({ topic, partition, key: RECENT_IDS_KEY, value: JSON.stringify(recentIds) });
  }
  return out;
}

/** A partition's state as the changelog holds it. */
export interface PartitionSnapshot {
  entries: StateEntry[];
  recentIds: string[];
  /** The input topic's partition count its state was written under; null when not recorded. */
  inputPartitions: number | null;
  /** The next input offset after the newest record processed, as a string; null when not recorded. */
  position: string | null;
}

/** The record of a partition's next input offset after its newest processed record. */
export function positionRecord(topic: string, partition: number, next: string): OutRecord {
  return { topic, partition, key: POSITION_KEY, value: JSON.stringify(next) };
}

/** The record that says under which input partition count a partition's state was written. */
export function inputPartitionsRecord(topic: string, partition: number, count: number): OutRecord {
  return { topic, partition, key: INPUT_PARTITIONS_KEY, value: JSON.stringify(count) };
}

/**
 * The state in a partition's changelog records. A record that is not JSON (written by something else,
 * or cut) is left out and reported: that piece of state starts afresh instead of the partition never
 * being restored.
 */
function parseSnapshot(
  records: Map<string, string>,
  onError: (key: string, error: Error) => void,
): PartitionSnapshot {
  const entries: StateEntry[] = [];
  let recentIds: string[] = [];
  let inputPartitions: number | null = null;
  let position: string | null = null;
  for (const [key, value] of records) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(value);
    } catch (err) {
      onError(key, err as Error);
      continue;
    }
    if (key === RECENT_IDS_KEY) {
      if (Array.isArray(parsed)) recentIds = parsed.filter((id): id is string => typeof id === "string");
      continue;
    }
    if (key === POSITION_KEY) {
      if (typeof parsed === "string" && /^\d+$/.test(parsed)) position = parsed;
      continue;
    }
    if (key === INPUT_PARTITIONS_KEY) {
      if (Number.isInteger(parsed) && (parsed as number) > 0) inputPartitions = parsed as number;
      continue;
    }
    const [kind, rule, group] = key.split(SEP);
    if (
      (kind === "ep" || kind === "win" || kind === "dm" || kind === "an" || kind === "seq") &&
      rule !== undefined &&
      group !== undefined
    ) {
      entries.push({ kind, rule, group, value: parsed });
    }
  }
  return { entries, recentIds, inputPartitions, position };
}

/**
 * Reads the whole changelog (committed records only) into memory and keeps following the partitions
 * this instance does not own, so a partition assigned in a rebalance can be restored at once. kafkajs has no manual partition
 * assignment, so this is a consumer in a group of its own that never commits.
 */
export class ChangelogReader {
  readonly #kafka: Kafka;
  readonly #topic: string;
  readonly #logger: Logger;
  readonly #groupId: string;
  readonly #groupPrefix: string;
  readonly #records = new Map<number, Map<string, string>>();
  readonly #position = new Map<number, number>();
  /** Partitions handed to the engine: not followed any more (the engine's memory is their state). */
  readonly #handedOver = new Set<number>();
  #consumer: Consumer | null = null;

  constructor(kafka: Kafka, topic: string, groupPrefix: string, logger: Logger) {
    this.#kafka = kafka;
    this.#topic = topic;
    this.#logger = logger;
    this.#groupPrefix = groupPrefix;
    this.#groupId = `${groupPrefix}.state-reader.${crypto.randomUUID()}`;
  }

  /**
   * Stops following a partition the engine now owns and forgets its records: the engine writes
   * them, so reading them back cost CPU for every checkpoint and memory for a copy of its state.
   * A later `snapshot` of it reads the changelog anew.
   */
  handOver(partition: number): void {
    if (this.#handedOver.has(partition)) return;
    this.#handedOver.add(partition);
    this.#records.delete(partition);
    this.#position.delete(partition);
    this.#consumer?.pause([{ topic: this.#topic, partitions: [partition] }]);
  }

  async start(): Promise<void> {
    const consumer = this.#consumer = this.#kafka.consumer({
      groupId: this.#groupId,
      allowAutoTopicCreation: false,
      maxWaitTimeInMs: 50,
      readUncommitted: false,
      // The changelog grows with the input topic: follow its new partitions as soon as the engine's
      // consumer sees them.
      metadataMaxAge: METADATA_MAX_AGE_MS,
    });
    // Batches that held only transaction markers or aborted records never reach eachBatch, but they
    // move the position: follow it from the instrumentation event.
    consumer.on(consumer.events.END_BATCH_PROCESS, (e) => {
      const { partition, lastOffset } = e.payload as { partition: number; lastOffset: string };
      if (!this.#handedOver.has(partition)) this.#advance(partition, Number(lastOffset) + 1);
    });
    await consumer.connect();
    await consumer.subscribe({ topics: [this.#topic], fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: ({ batch }) => {
        // Fetched before the partition was paused.
        if (this.#handedOver.has(batch.partition)) return Promise.resolve();
        let map = this.#records.get(batch.partition);
        if (map === undefined) this.#records.set(batch.partition, map = new Map());
        for (const m of batch.messages) {
          const key = m.key?.toString("utf8");
          if (key === undefined) continue;
          if (m.value === null) map.delete(key);
          else map.set(key, m.value.toString("utf8"));
        }
        const last = batch.messages.at(-1);
        if (last !== undefined) this.#advance(batch.partition, Number(last.offset) + 1);
        return Promise.resolve();
      },
    });
  }

  #advance(partition: number, next: number): void {
    if (next > (this.#position.get(partition) ?? 0)) this.#position.set(partition, next);
  }

  /**
   * The partition's state once this reader has caught up with everything committed to it (an open
   * transaction of a previous owner delays this until it commits or aborts).
   */
  async snapshot(
    partition: number,
    keepAlive: () => Promise<void>,
    timeoutMs = 120_000,
  ): Promise<PartitionSnapshot> {
    if (this.#handedOver.has(partition)) {
      // Owned before (a rebalance gave it back, or a failed transaction dropped its state): its
      // records since were not followed, so read the changelog once more with a reader of its own.
      const once = new ChangelogReader(this.#kafka, this.#topic, this.#groupPrefix, this.#logger);
      await once.start();
      try {
        return await once.snapshot(partition, keepAlive, timeoutMs);
      } finally {
        await once.stop();
      }
    }
    const admin = this.#kafka.admin();
    await admin.connect();
    const started = Date.now();
    let lastBeat = started;
    try {
      const offsets = await admin.fetchTopicOffsets(this.#topic);
      const end = Number(offsets.find((o) => o.partition === partition)?.high ?? "0");
      while ((this.#position.get(partition) ?? 0) < end) {
        if (Date.now() - started > timeoutMs) {
          throw new Error(
            `Cannot restore state of partition ${partition}: the changelog "${this.#topic}" did not reach offset ${end} within ${timeoutMs} ms`,
          );
        }
        if (Date.now() - lastBeat > 1000) {
          lastBeat = Date.now();
          await keepAlive();
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    } finally {
      await admin.disconnect();
    }
    const snapshot = parseSnapshot(
      this.#records.get(partition) ?? new Map(),
      (key, error) =>
        this.#logger.error("Skipped a changelog record that is not JSON", {
          partition,
          key: key.replaceAll(SEP, "/").slice(0, 200),
          error: error.message,
        }),
    );
    this.#logger.info("Restored partition state", {
      partition,
      entries: snapshot.entries.length,
      ms: Date.now() - started,
    });
    return snapshot;
  }

  async stop(): Promise<void> {
    await this.#consumer?.disconnect();
  }
}
