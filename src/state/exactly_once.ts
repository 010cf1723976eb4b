/**
 * The engine stage with exactly-once processing: each batch's alerts, aggregates, DLQ records, state
 * changes and consumer offset are committed in one Kafka transaction; a partition's state is restored
 * from the changelog as soon as the partition is assigned (at the latest before its first batch is
 * processed), and forgotten when the partition moves away.
 *
 * @module
 */
import type { Kafka } from "kafkajs";
import type { Logger } from "../log.ts";
import type { Counters, Pipeline, PipelineOptions } from "../pipeline.ts";
import type { ConsumerOptions, KafkaSource } from "../source/kafka.ts";
import type { Output, OutRecord, ShrinkRecord } from "../transport/output.ts";
import { changelogMark, changelogOfMark, growChangelog, partitionCounts } from "../transport/topics.ts";
import { type TopicIds, topicIds } from "../transport/topic_id.ts";
import { PartitionTransactions } from "../transport/partition_transactions.ts";
import { partitionOf } from "../transport/partitioner.ts";
import { ChangelogReader } from "./changelog.ts";
import {
  changelogRecords,
  inputPartitionsRecord,
  positionRecord,
  resumeOffset,
  stateAtRecord,
  topicIdRecord,
} from "./format.ts";

export interface ExactlyOnceOptions {
  kafka: Kafka;
  logger: Logger;
  groupId: string;
  eventsTopic: string;
  stateTopic: string;
  /** What stands for a record the broker refuses on its own for its size (see `ShrinkRecord`). */
  shrink?: ShrinkRecord;
  /** Where records outside any partition's transaction go (the HTTP API's acknowledgements). */
  output: Output;
  /** Builds the engine's Pipeline around this strategy's output (the composition root's settings). */
  pipeline: (parts: Pick<PipelineOptions, "output" | "checkpoint">) => Pipeline;
  /** Builds the consumer of `eventsTopic` with this strategy's batch handling (the root's settings). */
  source: (parts: Pick<ConsumerOptions, "handle" | "autoCommit" | "onAssign" | "onRecreated">) => KafkaSource;
  /** How often a partition's transactions hand its consumer offset in (default 1 s; see `resumeOffset`). */
  offsetCommitIntervalMs?: number;
  /** How long a partition is idle before its offset is handed in alone (default 200 ms). */
  idleHandInMs?: number;
  /** `--accept-empty-state`: a partition whose changelog was created again is restored empty. */
  acceptEmptyState?: boolean;
  /** How long a partition refused for its changelog is held back between looks (tests). */
  refusedRecheckMs?: number;
}

export interface ExactlyOnceEngine {
  pipeline: Pipeline;
  source: KafkaSource;
  /** The process's plain output (see `ExactlyOnceOptions.output`). */
  output: Output;
  /** One transactional producer per owned input partition. */
  transactions: PartitionTransactions;
  /** Publishes clock-driven output (closed windows, deadman alerts) with the state it changed. */
  flush(): Promise<void>;
  /** Resolves once the restores under way (of partitions just assigned) ended. */
  restored(): Promise<void>;
  /** Resolves once every batch's transaction handed to a producer ended (committed or failed). */
  settled(): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export function exactlyOnceEngine(opts: ExactlyOnceOptions): ExactlyOnceEngine {
  const { kafka, logger, groupId, eventsTopic, stateTopic } = opts;
  /** Partitions whose state is in memory and matches what the changelog and the offsets say. */
  const restored = new Set<number>();
  /** The partitions of this member's last group join. */
  let owned = new Set<number>();
  /** Group joins so far: a batch fetched before the last one is stale. */
  let joins = 0;
  /**
   * Restores started on assignment, by partition. A restore whose entry was replaced or removed (the
   * partition moved away meanwhile) applies nothing.
   */
  const restoring = new Map<number, Promise<void>>();
  /** Per restored partition: its previous owner committed up to here (records below are done). */
  const skipBelow = new Map<number, bigint>();
  const reader = new ChangelogReader(kafka, stateTopic, groupId, logger);
  const transactions = new PartitionTransactions(kafka, {
    groupId,
    topic: eventsTopic,
    logger,
    // An evicted member commits nothing: its partitions may be another member's already. (The next
    // owner's producer fences this one's as well; this check saves a transaction doomed to fail.)
    beforeCommit: () => source.confirmMember(),
    // Memory may hold changes no transaction committed: rebuild the partition from the changelog.
    onFailure: (p) => recover(p),
    // A partition's state changes go with the transaction that carries the batches behind them.
    supplement: (p) => restored.has(p) ? checkpoint(p) : [],
    ...(opts.shrink === undefined ? {} : { shrink: opts.shrink }),
  });
  const pipeline = opts.pipeline({ output: opts.output, checkpoint: true });

  /** Partitions the changelog has, as far as this process knows. */
  let changelogPartitions = 0;
  /** The changelog's topic id at start (null: not known), committed with every offset handed in. */
  let changelogId: string | null = null;
  /** Reads the changelog's id at each restore (null: not checked). */
  let changelogIds: TopicIds | null = null;
  /** Partitions the input topic has, as far as this process knows. */
  let inputPartitions = 0;
  /**
   * Per restored partition: the input partition count its changelog state was last written under
   * (none yet: its next transaction writes it).
   */
  const writtenUnder = new Map<number, number>();
  /** Per restored partition: the input topic's id its changelog offsets were last written under. */
  const writtenOf = new Map<number, string>();
  /** Per partition: resolved notices of sensors that moved away, for its next transaction. */
  const released = new Map<number, OutRecord[]>();
  let refreshing: Promise<void> = Promise.resolve();
  /**
   * Per restored partition: the next offset after the newest record ever processed, kept in the
   * changelog. A group whose offsets were reset (to earliest, or back in time) reads records below
   * it again: they are processed, and the alerts they raise are marked `replayed`.
   */
  const processedUpTo = new Map<number, bigint>();
  /**
   * Per restored partition: the offset after the newest record in memory, whose transaction may
   * still be open (see `onAssign`).
   */
  const evaluatedUpTo = new Map<number, bigint>();
  /** Per restored partition: the consumer offset the group has from it (committed). */
  const committedAt = new Map<number, bigint>();
  /**
   * Per restored partition: the consumer offset last handed to a transaction (committed or still in
   * flight), and when the next transaction hands one in. A transaction carries the offset at most
   * every `OFFSET_COMMIT_INTERVAL_MS`: the others are three round trips instead of five, and the
   * changelog's "at" record says what the state holds beyond the group's offset (`resumeOffset`).
   */
  const handedIn = new Map<number, bigint>();
  const offsetsDue = new Map<number, number>();
  /** Per partition: its offset handed in once it has been idle a moment (see `whenIdle`). */
  const idleTimers = new Map<number, ReturnType<typeof setTimeout>>();
  /** Per partition: its commits handed to the producer and not ended yet, oldest first. */
  const inFlight = new Map<number, Promise<void>[]>();
  /** Set by `stop`: batches are left to the partitions' next owner, in-flight commits end. */
  let stopping = false;

  /**
   * After partitions were added, a sensor whose key hashes to another partition now is judged there:
   * its open episodes and deadman timer here end (see `RuleEngine.releaseSensors`).
   */
  const releaseMoved = (p: number): void => {
    const count = inputPartitions;
    const out = pipeline.release(p, (key) => partitionOf(key, count) === p);
    if (out.length > 0) released.set(p, [...released.get(p) ?? [], ...out]);
  };

  /** Forgets partition `p`'s state: it moved away, or memory may hold changes no transaction committed. */
  const forget = (p: number): void => {
    pipeline.dropPartition(p);
    restored.delete(p);
    writtenUnder.delete(p);
    writtenOf.delete(p);
    processedUpTo.delete(p);
    evaluatedUpTo.delete(p);
    committedAt.delete(p);
    handedIn.delete(p);
    offsetsDue.delete(p);
    clearTimeout(idleTimers.get(p));
    idleTimers.delete(p);
    released.delete(p);
    skipBelow.delete(p);
  };

  /**
   * A transaction of `p` failed, possibly after its batch's handler returned and the consumer fetched
   * on: memory is rebuilt from the changelog, and the partition is read again from its last
   * committed offset (without the rewind, its records up to the fetch position waited for the next
   * group join).
   */
  const recover = (p: number): void => {
    const at = committedAt.get(p);
    forget(p);
    if (!owned.has(p) || stopping) return;
    if (at !== undefined) source.rewind(p, at);
    // A quiet partition has no record to read again: its state came back at its next record, and
    // its clock stood still until then (a silent sensor's deadman alert, taken back with a failed
    // tick, never came). Restored now, unless the group went on without this member: its restore
    // would fence the partition's next owner.
    source.confirmMember().then(() => {
      if (owned.has(p) && !stopping && !restored.has(p) && !restoring.has(p)) restoreAhead(p);
    }, () => {});
  };

  const grewTo = (count: number): void => {
    if (count <= inputPartitions) return;
    const before = inputPartitions;
    inputPartitions = count;
    if (before === 0) return;
    logger.warn(`Partitions were added to "${eventsTopic}": sensors that moved end their state here`, {
      from: before,
      to: count,
    });
    for (const p of restored) releaseMoved(p);
  };

  /** Reads the input topic's partition count; every member rejoins the group when it grows. */
  const refreshInputPartitions = async (): Promise<void> => {
    const admin = kafka.admin();
    await admin.connect();
    try {
      grewTo((await partitionCounts(admin, [eventsTopic])).get(eventsTopic) ?? 0);
    } finally {
      await admin.disconnect();
    }
  };
  /**
   * Makes sure input partition `p` has its changelog partition before its state is restored or
   * written: a partition added to the input topic while the service runs needs one, and kafkajs
   * silently drops records sent to a partition that does not exist (the transaction commits without
   * them, and a restart restores empty state).
   */
  const coverPartition = async (p: number): Promise<void> => {
    if (p < changelogPartitions) return;
    const admin = kafka.admin();
    await admin.connect();
    try {
      const inputs = (await partitionCounts(admin, [eventsTopic])).get(eventsTopic) ?? 0;
      grewTo(Math.max(inputs, p + 1));
      const before = changelogPartitions;
      changelogPartitions = await growChangelog(
        admin,
        stateTopic,
        eventsTopic,
        Math.max(inputs, p + 1),
        logger,
      );
      // The producer's metadata still has the old count: a record for a new partition would vanish.
      if (changelogPartitions > before) transactions.renewProducers();
    } finally {
      await admin.disconnect();
    }
  };

  const checkpoint = (p: number): OutRecord[] => {
    if (p >= changelogPartitions) {
      throw new Error(
        `The state changelog "${stateTopic}" has no partition ${p}: refusing to commit without its state`,
      );
    }
    const { changes, recentIds } = pipeline.checkpoint(p);
    const records: OutRecord[] = [];
    if (writtenUnder.get(p) !== inputPartitions) {
      writtenUnder.set(p, inputPartitions);
      records.push(inputPartitionsRecord(stateTopic, p, inputPartitions));
    }
    const topicId = source.topicId;
    if (topicId !== null && writtenOf.get(p) !== topicId) {
      writtenOf.set(p, topicId);
      records.push(topicIdRecord(stateTopic, p, topicId));
    }
    return records.concat(changelogRecords(
      stateTopic,
      p,
      changes,
      recentIds,
      (entry, error) => {
        pipeline.counters.state_unwritten++;
        logger.error("Cannot checkpoint a piece of state: written as a tombstone", {
          partition: p,
          rule: entry.rule,
          group: entry.group,
          error,
        });
      },
    ));
  };

  /** What partition `p`'s next transaction publishes besides its own output. */
  const takeReleased = (p: number): OutRecord[] => {
    const out = released.get(p) ?? [];
    released.delete(p);
    return out;
  };

  /**
   * Restores partition `p` from the changelog; `current` says, once everything is read, whether the
   * result still counts (the partition may have moved away meanwhile): if not, nothing is applied.
   */
  const restore = async (
    p: number,
    keepAlive: () => Promise<void>,
    current: () => boolean,
  ): Promise<void> => {
    await refreshing;
    await coverPartition(p);
    // A partition that moved away meanwhile is not fenced: its new owner may be using it.
    if (!current()) return;
    // Fences the partition's previous owner first: once its open transaction is aborted, the
    // changelog and the committed offset say all there is (a zombie's late commit would add to
    // them after the restore read them: 5 alerts twice of 10 when the owner stalled mid-commit).
    await transactions.open(p);
    const snapshot = await reader.snapshot(p, keepAlive);
    // A previous owner may have committed past where this member started fetching (its last
    // transaction was still open when we joined): its records are done, skip them.
    const admin = kafka.admin();
    await admin.connect();
    let committed: bigint;
    let committedWith: string | null;
    try {
      const [topic] = await admin.fetchOffsets({ groupId, topics: [eventsTopic] });
      const found = topic?.partitions.find((x) => x.partition === p);
      const offset = found?.offset ?? "-1";
      committed = BigInt(offset === "-1" ? 0 : offset);
      committedWith = changelogOfMark((found as { metadata?: string | null } | undefined)?.metadata);
    } finally {
      await admin.disconnect();
    }
    // The group's offset went with another changelog than the one there now (deleted and created
    // again while the service ran, its start checked it): the state it stands for is gone, and
    // restoring what the new one holds would fire its open episodes again. The partition is not
    // processed; a restart refuses with the fix, and --accept-empty-state restores it empty.
    if (committedWith !== null && changelogIds !== null && !opts.acceptEmptyState) {
      const now = await changelogIds.read(stateTopic);
      if (now !== null && now !== committedWith) {
        // Moved away or stopping meanwhile: nothing to hold (a hold nobody released kept readiness
        // false for good).
        if (!current()) return;
        // Said once per partition and changelog; the partition is held back and looked at again
        // every `REFUSED_RECHECK_MS` (its offsets reset, or a restart with --accept-empty-state).
        const why = `the state changelog "${stateTopic}" was deleted and created again (${now}): ` +
          `the group's offset went with ${committedWith}`;
        const fields = { partition: p, topic: stateTopic, committed_with: committedWith, changelog_id: now };
        if (source.held.get(p) === why) logger.debug("The partition is still held back", fields);
        else {
          logger.error(
            "The state changelog was deleted and created again while the engine ran: this partition is not processed",
            fields,
          );
        }
        source.hold(p, why, opts.refusedRecheckMs ?? REFUSED_RECHECK_MS);
        throw new PartitionHeldError(p, stateTopic);
      }
    }
    if (!current()) return;
    source.release(p);
    pipeline.restorePartition(p, snapshot.changes, snapshot.recentIds);
    restored.add(p);
    // Offsets written under a topic since deleted and created again say nothing of the new one: its
    // sensors' state stands, but none of its records was processed, and the group's offset (the old
    // one's went with it) is where reading starts. Without the check the new topic's first records
    // were skipped up to where the old one stood.
    const topicId = source.topicId;
    const replaced = snapshot.topicId !== null && topicId !== null && snapshot.topicId !== topicId;
    if (replaced) {
      logger.warn(
        "The partition's state was written while the input topic was another (deleted and created again since): its offsets are dropped",
        { partition: p, written_under: snapshot.topicId, topic_id: topicId, from: committed.toString() },
      );
    }
    if (snapshot.topicId === null) writtenOf.delete(p);
    else writtenOf.set(p, snapshot.topicId);
    // The records between the group's offset and where the state stands are in the state already.
    const from = replaced ? committed : resumeOffset(committed, snapshot.at);
    skipBelow.set(p, from);
    committedAt.set(p, committed);
    handedIn.set(p, committed);
    evaluatedUpTo.set(p, from);
    // State written before partitions were added holds sensors that now belong elsewhere. Without a
    // record of its count (a new partition, or state written before there were records of it), the
    // next transaction writes one: a partition that never had one restored after partitions were
    // added, by another member or after a restart, released nothing (the moved sensor's episode
    // stayed firing on its old partition, ~1 run in 3 with two engine workers).
    if (snapshot.inputPartitions === null) writtenUnder.delete(p);
    else writtenUnder.set(p, snapshot.inputPartitions);
    processedUpTo.set(p, replaced ? committed : BigInt(snapshot.position ?? "0"));
    // Without a record of its count the state may have been written under fewer partitions (by a
    // version before 54ab844, which wrote none for a partition restored from an empty changelog):
    // what does not hash here under the current count is released too, once (the record written
    // next says the current count). Under the current count nothing is, so nothing moves for it.
    if (snapshot.inputPartitions !== inputPartitions) releaseMoved(p);
    reader.handOver(p);
  };

  /**
   * Restores an owned partition now (it was just assigned, or its state was dropped), not at its next
   * record: a quiet partition's open alerts show in the API and its clock (deadman rules, windows) runs
   * from the next tick. It runs beside the consumer, whose own fetches keep its heartbeat going
   * meanwhile; a failure leaves the restore to the partition's next batch.
   */
  const restoreAhead = (p: number): void => {
    const current = () => restoring.get(p) === done && owned.has(p);
    // The consumer's own fetches keep its membership alive; a stop ends the wait for the changelog.
    const keepAlive = () =>
      current() ? Promise.resolve() : Promise.reject(new Error("The partition moved away"));
    const done: Promise<void> = restore(p, keepAlive, current)
      .catch((error) => {
        // A partition that moved away has nothing to say; one held back said it.
        if (!current() || error instanceof PartitionHeldError) return;
        logger.warn("Cannot restore the partition's state ahead of its next batch: that batch does", {
          partition: p,
          error,
        });
      })
      .finally(() => {
        if (restoring.get(p) === done) restoring.delete(p);
      });
    restoring.set(p, done);
  };

  const source = opts.source({
    autoCommit: false,
    // Every offset kept of the old topic goes; the sensors' state stays (it is of sensors, not of
    // offsets). Transactions in flight end first: they carry the old topic's offsets, which the
    // source then replaces with the new topic's first ones.
    onRecreated: async (partitions, starts) => {
      await settled();
      for (const p of partitions) {
        if (!restored.has(p)) continue;
        const start = starts.get(p) ?? 0n;
        for (const kept of [processedUpTo, evaluatedUpTo, committedAt, handedIn]) kept.set(p, start);
        offsetsDue.delete(p);
        skipBelow.delete(p);
      }
    },
    onAssign: (partitions) => {
      joins++;
      owned = new Set(partitions);
      for (const p of [...restored]) if (!owned.has(p)) forget(p);
      for (const p of [...source.held.keys()]) if (!owned.has(p)) source.release(p);
      for (const p of [...restoring.keys()]) if (!owned.has(p)) restoring.delete(p);
      // A moved partition's producer closes (its next owner fences it anyway); a new one's producer
      // opens now, so the fence of a previous owner's open transaction does not wait for a batch.
      transactions.retain(partitions).catch(() => {});
      for (const p of partitions) {
        transactions.open(p).catch((error) =>
          logger.warn("Cannot open the partition's transactional producer yet", { partition: p, error })
        );
      }
      // A join follows partitions added to the topic: every member learns the new count, also one
      // that was given none of the new partitions, whose sensors may have moved all the same.
      refreshing = refreshing.then(refreshInputPartitions).catch((error) =>
        logger.warn("Cannot read the input topic's partition count", { error })
      );
      for (const p of partitions) if (!restored.has(p) && !restoring.has(p)) restoreAhead(p);
      // kafkajs reads a partition from its committed offset after every join: one kept goes on from
      // what memory holds instead, or the records between would be processed twice. That is so with
      // commits still in flight, and as well once they ended: most transactions hand no offset in
      // (10 records of a kept partition read again, all counted as duplicates). Should a commit
      // fail, `recover` reads them again from the committed offset.
      for (const p of partitions) {
        const at = evaluatedUpTo.get(p);
        if (at !== undefined && restored.has(p)) source.rewind(p, at);
      }
    },
    handle: async (records, ctx) => {
      // Not processed: the partition's next owner (or this member after a restart) reads it.
      if (stopping) return;
      const p = records[0]!.partition!;
      const fetchedIn = joins;
      if (!restored.has(p)) {
        const pending = restoring.get(p);
        if (pending !== undefined) await beating(pending, ctx.heartbeat);
        if (!restored.has(p)) {
          // The restore on assignment failed: this batch's turn. A join meanwhile sees it running.
          const done = restore(p, ctx.heartbeat, () => owned.has(p));
          const running = done.catch(() => {});
          restoring.set(p, running);
          try {
            await done;
          } catch (err) {
            // Held back (see `restore`): the source reads the batch again when the hold ends. Thrown,
            // each refusal counted as a failure of kafkajs's fetch loop, which crashed after five
            // and rejoined the group.
            if (err instanceof PartitionHeldError) return;
            throw err;
          } finally {
            if (restoring.get(p) === running) restoring.delete(p);
          }
          // Never judged on empty state: the batch is read again by whoever owns the partition now.
          if (!restored.has(p)) throw new Error(`Partition ${p} moved away while its state was restored`);
        }
        // The group moved on while this batch waited for its state: its records are read again from
        // the committed offset (committing it too repeated 100 alerts when a crashed worker rejoined).
        if (fetchedIn !== joins) throw new Error(`The group rebalanced while partition ${p} was restored`);
      }
      const from = skipBelow.get(p);
      if (from !== undefined) {
        if (BigInt(ctx.lastOffset) + 1n >= from) skipBelow.delete(p);
        records = records.filter((r) => BigInt(r.offset!) >= from);
        if (records.length === 0) return;
      }
      const upTo = processedUpTo.get(p) ?? 0n;
      if (BigInt(records[0]!.offset!) < upTo) {
        records = records.map((r) => BigInt(r.offset!) < upTo ? { ...r, replayed: true } : r);
        logger.warn(
          "Re-reading records processed before (the group's offsets were reset): their alerts are marked replayed",
          {
            partition: p,
            from: records[0]!.offset,
            processed_up_to: upTo.toString(),
          },
        );
      }
      const before = countersCopy(pipeline.counters);
      const out = pipeline.evaluate(records);
      const counted = countersCopy(pipeline.counters);
      const next = BigInt(ctx.lastOffset) + 1n;
      const position = next > upTo ? [positionRecord(stateTopic, p, next.toString())] : [];
      let output: OutRecord[];
      try {
        // A rebalance that ended while the batch ran gave the partition to another member: its
        // producer was closed, and opening one again would fence the new owner's (with kafkajs's
        // protocol the broker checks no generation), so a stale batch would commit and be processed
        // again by the new owner (alerts repeated in 2 of 10 runs of a worker crash).
        if (!owned.has(p)) throw new PartitionMovedError(p);
        output = [...takeReleased(p), ...out, ...position];
      } catch (err) {
        // The batch is read and counted again: a failed transaction's counts are taken back, or the
        // counters overcount (5,096 events processed for 5,060 produced after 4 aborts).
        takeBack(pipeline.counters, before, counted);
        forget(p);
        throw err;
      }
      evaluatedUpTo.set(p, next);
      if (next > upTo) processedUpTo.set(p, next);
      // The handler returns before the transaction ends, and the consumer fetches on: batches that
      // arrive meanwhile join the partition's next transaction (one per transaction in flight), so
      // evaluation overlaps the transactions' round trips instead of waiting for the slowest
      // partition of each fetch. A failure rebuilds the partition and reads it again (`recover`).
      const done = commitUpTo(p, output, next, Date.now() >= (offsetsDue.get(p) ?? 0)).then(undefined, () => {
        takeBack(pipeline.counters, before, counted);
      });
      const pending = track(p, done);
      // Bounded: past this many batches waiting for their transaction, the consumer waits too.
      if (pending.length > MAX_PENDING_BATCHES) await beating(pending[0]!, ctx.heartbeat);
    },
  });
  /** Counts `done` among `p`'s commits in flight until it ends; returns them. */
  function track(p: number, done: Promise<void>): Promise<void>[] {
    const pending = inFlight.get(p) ?? [];
    inFlight.set(p, pending);
    pending.push(done);
    done.finally(() => {
      pending.splice(pending.indexOf(done), 1);
      if (pending.length > 0 || inFlight.get(p) !== pending) return;
      inFlight.delete(p);
      whenIdle(p);
    });
    return pending;
  }

  /**
   * Hands in the offset of a partition that got no batch for `IDLE_HAND_IN_MS` after its last
   * transaction ended, if that one did not: the group's lag reaches 0 a moment after the last record
   * (the end of a catch-up, a quiet partition) instead of at the next offset interval or tick.
   */
  function whenIdle(p: number): void {
    if (stopping || idleTimers.has(p)) return;
    idleTimers.set(
      p,
      setTimeout(() => {
        idleTimers.delete(p);
        const next = evaluatedUpTo.get(p);
        if (stopping || next === undefined || inFlight.has(p) || !owned.has(p) || !restored.has(p)) return;
        if (next <= (handedIn.get(p) ?? 0n)) return;
        // A failure is handled by `recover`, as for any transaction.
        track(p, commitUpTo(p, [], next, true).catch(() => {}));
      }, opts.idleHandInMs ?? IDLE_HAND_IN_MS),
    );
  }

  /**
   * Commits `records` of partition `p` with where its state stands (`next`), and the consumer offset
   * too when `handOver` (or when an earlier transaction left the group's offset behind and the
   * partition is idle: see `flush`).
   */
  function commitUpTo(p: number, records: OutRecord[], next: bigint, handOver: boolean): Promise<void> {
    const handed = handOver ? next : handedIn.get(p) ?? 0n;
    if (handOver) {
      handedIn.set(p, next);
      offsetsDue.set(p, Date.now() + (opts.offsetCommitIntervalMs ?? OFFSET_COMMIT_INTERVAL_MS));
    }
    // The changelog's id goes with the offset: a start tells a changelog created again since by it.
    const metadata = changelogId === null ? {} : { metadata: changelogMark(changelogId) };
    const offsets = handOver
      ? [{ topic: eventsTopic, partitions: [{ partition: p, offset: next.toString(), ...metadata }] }]
      : [];
    return transactions.commit(p, [...records, stateAtRecord(stateTopic, p, next, handed)], offsets).then(
      () => {
        if (handOver && next > (committedAt.get(p) ?? -1n)) committedAt.set(p, next);
      },
    );
  }

  /** Resolves once every commit handed to a producer ended (committed or failed). */
  const settled = async (): Promise<void> => {
    while (inFlight.size > 0) await Promise.all([...inFlight.values()].flat());
  };

  const flush = async (): Promise<void> => {
    // Each partition's clock-driven output goes in its own transaction, with the state it changed.
    const now = Date.now();
    await Promise.all(
      [...restored].filter((p) => owned.has(p)).map((p) => {
        const before = countersCopy(pipeline.counters);
        const records = [...takeReleased(p), ...pipeline.tick(now, p)];
        const counted = countersCopy(pipeline.counters);
        const next = evaluatedUpTo.get(p) ?? 0n;
        // A partition whose last batches handed in no offset hands it in now, so the group's lag
        // reaches 0 within a tick or two of the last record.
        const behind = next > (handedIn.get(p) ?? 0n);
        // The state the tick changed (and any a batch changed) goes with the transaction.
        // A failed transaction's counts are taken back, as a batch's are: the restored state reports
        // the same alerts again (a silent sensor counted twice).
        return records.length > 0 || behind || pipeline.changed(p)
          ? commitUpTo(p, records, next, behind).catch((err) => {
            takeBack(pipeline.counters, before, counted);
            throw err;
          })
          : Promise.resolve();
      }),
    );
  };

  return {
    pipeline,
    source,
    output: opts.output,
    transactions,
    flush,
    settled,
    async restored() {
      await Promise.all([...restoring.values()]);
    },
    async start() {
      const admin = kafka.admin();
      await admin.connect();
      try {
        const counts = await partitionCounts(admin, [stateTopic, eventsTopic]);
        changelogPartitions = counts.get(stateTopic) ?? 0;
        inputPartitions = counts.get(eventsTopic) ?? 0;
      } finally {
        await admin.disconnect();
      }
      changelogIds = topicIds(kafka);
      changelogId = await changelogIds?.read(stateTopic) ?? null;
      await reader.start();
      await source.start();
    },
    async stop() {
      // Commits handed to the producers end before the group is left: a partition's next owner then
      // starts from them instead of fencing and reading them again.
      stopping = true;
      for (const timer of idleTimers.values()) clearTimeout(timer);
      idleTimers.clear();
      await settled();
      // And hands in the offsets the last transactions left behind.
      await flush().catch((error) => logger.warn("Cannot hand in the last offsets", { error }));
      // Restores under way end at their next step, before they open a producer or apply anything.
      owned = new Set();
      const pending = [...restoring.values()];
      restoring.clear();
      await source.stop();
      await Promise.all(pending);
      await transactions.closeAll();
      await reader.stop();
      await changelogIds?.close().catch(() => {});
    },
  };
}

/**
 * Batches of one partition whose transaction has not ended before its consumer waits: 4 covers one
 * transaction in flight and the batches that join the next one while it runs.
 */
const MAX_PENDING_BATCHES = 4;

/**
 * How often a partition's transactions hand its consumer offset to the group (the others do not). A
 * restart reads at most this much input again to skip it (see `resumeOffset`).
 */
const OFFSET_COMMIT_INTERVAL_MS = 1000;

/** How long a partition is idle after its last transaction before its offset is handed in alone. */
const IDLE_HAND_IN_MS = 200;
/** How long a partition refused for its changelog is held back before it is looked at again. */
const REFUSED_RECHECK_MS = 30_000;

/**
 * Waits for `done` while the batch that waits for it keeps its consumer's membership alive: kafkajs
 * sends heartbeats only between batches.
 */
async function beating(done: Promise<void>, heartbeat: () => Promise<void>): Promise<void> {
  let settled = false;
  const end = done.finally(() => settled = true);
  while (!settled) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([end, new Promise((r) => timer = setTimeout(r, 1000))]);
    clearTimeout(timer);
    if (!settled) await heartbeat();
  }
}

const COUNTS = ["events", "accepted", "duplicates", "alerts", "aggregates"] as const;

/** The counters one batch changes, copied. */
export function countersCopy(
  c: Counters,
): Pick<Counters, "dead_letters" | "consumed" | "invalid" | typeof COUNTS[number]> {
  return {
    events: c.events,
    accepted: c.accepted,
    duplicates: c.duplicates,
    alerts: c.alerts,
    aggregates: c.aggregates,
    dead_letters: { ...c.dead_letters },
    consumed: new Map(c.consumed),
    invalid: new Map(c.invalid),
  };
}

/** Takes back from `c` what was counted between the copies `before` and `after`. */
export function takeBack(
  c: Counters,
  before: ReturnType<typeof countersCopy>,
  after: ReturnType<typeof countersCopy>,
): void {
  for (const k of COUNTS) c[k] -= after[k] - before[k];
  for (const [k, n] of Object.entries(after.dead_letters)) {
    c.dead_letters[k] = (c.dead_letters[k] ?? 0) - (n - (before.dead_letters[k] ?? 0));
  }
  for (const key of ["consumed", "invalid"] as const) {
    for (const [k, n] of after[key]) c[key].set(k, (c[key].get(k) ?? 0) - (n - (before[key].get(k) ?? 0)));
  }
}

/**
 * A partition whose state cannot be restored (its changelog is not the one its offsets went with):
 * held back by the source, its batch read again when the hold ends.
 */
export class PartitionHeldError extends Error {
  constructor(partition: number, stateTopic: string) {
    super(`The state changelog "${stateTopic}" is not the one partition ${partition}'s offset went with`);
    this.name = "PartitionHeldError";
  }
}

/** A batch of a partition this member no longer owns: not committed, its next owner reads it again. */
export class PartitionMovedError extends Error {
  constructor(partition: number) {
    super(
      `Partition ${partition} was assigned to another member while its batch ran: the batch is not committed`,
    );
    this.name = "PartitionMovedError";
  }
}
