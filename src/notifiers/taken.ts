/**
 * What the notifier stage has handed to the Dispatcher, per partition of the alerts topic, for as long
 * as this member keeps the partition. A rebalance does not wait for deliveries sleeping in retry
 * backoff (a receiver that is down), so after the rejoin a partition this member keeps is read again
 * from its committed offset: its alerts whose deliveries are still under way must not be handed on a
 * second time (each receiver that had them already would be notified twice, and a receiver that is
 * down would have them twice in its queue). Their offsets are committed once those deliveries end.
 *
 * @module
 */
import type { InputRecord } from "../contract/records.ts";

interface Batch {
  first: bigint;
  last: bigint;
  done: Promise<void>;
  /** Delivered or dead-lettered everywhere: its records are neither fresh nor pending. */
  settled: boolean;
}

interface Partition {
  /** The offset after the last record handed on. */
  next: bigint;
  /** Batches handed on and not yet delivered or dead-lettered everywhere, in offset order, from `head`. */
  pending: Batch[];
  /** Where `pending` starts: the settled batches before it are dropped in bulk. */
  head: number;
}

/** Per partition: what this member handed on since it got the partition, and what is still under way. */
export class TakenOn {
  readonly #partitions = new Map<number, Partition>();

  /**
   * Splits a batch of `partition`: the records not handed on yet (`fresh`), and the deliveries still
   * under way of those that were (`pending`: the batch is durable once they are). A record handed on
   * and delivered since is in neither.
   */
  split(partition: number, records: InputRecord[]): { fresh: InputRecord[]; pending: Promise<void>[] } {
    const p = this.#partitions.get(partition);
    if (p === undefined) return { fresh: records, pending: [] };
    const fresh: InputRecord[] = [];
    const pending = new Set<Promise<void>>();
    // Both in offset order: one pass over each.
    let i = p.head;
    for (const r of records) {
      const offset = r.offset === null ? null : BigInt(r.offset);
      if (offset === null || offset >= p.next) {
        fresh.push(r);
        continue;
      }
      while (i < p.pending.length && p.pending[i]!.last < offset) i++;
      const batch = p.pending[i];
      if (batch !== undefined && batch.first <= offset && !batch.settled) pending.add(batch.done);
    }
    return { fresh, pending: [...pending] };
  }

  /**
   * Records `first`..`last` of `partition` were handed on; `done` resolves once each is delivered or
   * dead-lettered. If it rejects (the stage stops), the partition is forgotten: a later read hands
   * its records on again.
   */
  add(partition: number, first: bigint, last: bigint, done: Promise<void>): void {
    let p = this.#partitions.get(partition);
    if (p === undefined) {
      p = { next: 0n, pending: [], head: 0 };
      this.#partitions.set(partition, p);
    }
    if (last + 1n > p.next) p.next = last + 1n;
    const batch: Batch = { first, last, done, settled: false };
    p.pending.push(batch);
    const kept = p;
    done.then(() => {
      // Dropped from the front once every earlier one settled too, the array cut when half of it is
      // dropped: batches settle mostly in order, and finding and cutting out each one (thousands
      // waiting for a receiver that is down) was quadratic.
      batch.settled = true;
      while (kept.head < kept.pending.length && kept.pending[kept.head]!.settled) kept.head++;
      if (kept.head * 2 >= kept.pending.length) {
        kept.pending.splice(0, kept.head);
        kept.head = 0;
      }
    }, () => {
      if (this.#partitions.get(partition) === kept) this.#partitions.delete(partition);
    });
  }

  /** After a group join: partitions other than `mine` were read by another member meanwhile, maybe. */
  keepOnly(mine: readonly number[]): void {
    for (const partition of [...this.#partitions.keys()]) {
      if (!mine.includes(partition)) this.#partitions.delete(partition);
    }
  }

  /** The partitions' offsets start over (the topic was created again). */
  forget(partitions: readonly number[]): void {
    for (const partition of partitions) this.#partitions.delete(partition);
  }
}
