/**
 * Something queued by a time: `due` is its key, `slot` its place in the queue's heap (-1: not queued,
 * -2: in the queue's run, linked by `prev`/`next`).
 */
export interface Deadline {
  due: number;
  slot: number;
  prev?: Deadline | null;
  next?: Deadline | null;
}

const OUT = -1;
const IN_RUN = -2;

/**
 * Items by `due`, earliest first, each item knowing its own place, so it can be moved to another time
 * or taken out without a search. Two parts: a run, a list already in order, for an item moved to a
 * time no earlier than the run's last (what a deadman timer does at every event of its sensor: its
 * deadline moves to the event's time plus the rule's `absent_for`), in O(1); and a binary min-heap for
 * every other move, in O(log n). Kept in the heap alone, the move at each event cost a healthy fleet
 * of 100,000 sensors ~190 ns per event (heap 542-630 ns, with the run 351-450 ns per event: three runs
 * in each order of scripts/bench/deadman_tick.ts --scenario healthy --before DIR). Items are
 * the caller's own objects: an index beside them (a Map per item) would cost more than the fields.
 */
export class DeadlineQueue<T extends Deadline> {
  readonly #heap: T[] = [];
  #first: T | null = null;
  #last: T | null = null;
  #runSize = 0;

  get size(): number {
    return this.#heap.length + this.#runSize;
  }

  /** Whether `item` is queued. */
  has(item: T): boolean {
    return item.slot !== OUT;
  }

  /** The item due first, left in the queue. */
  peek(): T | undefined {
    const top = this.#heap[0];
    const first = this.#first;
    if (first === null) return top;
    return top !== undefined && top.due < first.due ? top : first;
  }

  /** Queues `item` at `due`, or moves it there if it is queued already. */
  set(item: T, due: number): void {
    if (item.slot === IN_RUN) this.#unlink(item);
    if (item.slot === OUT) {
      item.due = due;
      if (this.#last === null || due >= this.#last.due) return this.#append(item);
      item.slot = this.#heap.length;
      this.#heap.push(item);
      this.#up(item.slot);
      return;
    }
    // In the heap: a move to the run's end costs less than a move down the heap.
    if (this.#last === null || due >= this.#last.due) {
      this.#remove(item);
      item.due = due;
      return this.#append(item);
    }
    const before = item.due;
    item.due = due;
    if (due < before) this.#up(item.slot);
    else if (due > before) this.#down(item.slot);
  }

  /** Takes out the item due first. */
  pop(): T | undefined {
    const top = this.peek();
    if (top !== undefined) this.delete(top);
    return top;
  }

  /** Takes `item` out, if it is queued. */
  delete(item: T): void {
    if (item.slot === IN_RUN) this.#unlink(item);
    else if (item.slot >= 0) this.#remove(item);
  }

  /** Empties the queue, then queues `items` at their `due` (in O(n), not O(n log n)). */
  reset(items: Iterable<T>): void {
    for (const item of this.#heap) item.slot = OUT;
    this.#heap.length = 0;
    for (let item = this.#first; item !== null; item = item.next as T | null) item.slot = OUT;
    this.#first = this.#last = null;
    this.#runSize = 0;
    for (const item of items) {
      item.slot = this.#heap.length;
      this.#heap.push(item);
    }
    for (let i = (this.#heap.length >> 1) - 1; i >= 0; i--) this.#down(i);
  }

  #append(item: T): void {
    item.slot = IN_RUN;
    item.prev = this.#last;
    item.next = null;
    if (this.#last === null) this.#first = item;
    else this.#last.next = item;
    this.#last = item;
    this.#runSize++;
  }

  #unlink(item: T): void {
    const prev = item.prev as T | null;
    const next = item.next as T | null;
    if (prev === null) this.#first = next;
    else prev.next = next;
    if (next === null) this.#last = prev;
    else next.prev = prev;
    item.prev = item.next = null;
    item.slot = OUT;
    this.#runSize--;
  }

  /** Takes `item` out of the heap. */
  #remove(item: T): void {
    const i = item.slot;
    item.slot = OUT;
    const last = this.#heap.pop()!;
    if (last === item) return;
    this.#heap[i] = last;
    last.slot = i;
    this.#up(i);
    this.#down(last.slot);
  }

  #up(i: number): void {
    const heap = this.#heap;
    const item = heap[i]!;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = heap[parent]!;
      if (p.due <= item.due) break;
      heap[i] = p;
      p.slot = i;
      i = parent;
    }
    heap[i] = item;
    item.slot = i;
  }

  #down(i: number): void {
    const heap = this.#heap;
    const n = heap.length;
    const item = heap[i]!;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= n) break;
      if (child + 1 < n && heap[child + 1]!.due < heap[child]!.due) child++;
      const c = heap[child]!;
      if (c.due >= item.due) break;
      heap[i] = c;
      c.slot = i;
      i = child;
    }
    heap[i] = item;
    item.slot = i;
  }
}
