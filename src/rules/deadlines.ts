/** Something queued by a time: `due` is its key, `slot` its place in the queue (-1: not queued). */
export interface Deadline {
  due: number;
  slot: number;
}

/**
 * A binary min-heap of items by `due`, each item knowing its own place (`slot`), so it can be moved to
 * another time or taken out in O(log n) without a search. Items are the caller's own objects: an index
 * beside them (a Map per item) would cost more than the two fields.
 */
export class DeadlineQueue<T extends Deadline> {
  readonly #heap: T[] = [];

  get size(): number {
    return this.#heap.length;
  }

  /** The item due first, left in the queue. */
  peek(): T | undefined {
    return this.#heap[0];
  }

  /** Queues `item` at `due`, or moves it there if it is queued already. */
  set(item: T, due: number): void {
    if (item.slot < 0) {
      item.due = due;
      item.slot = this.#heap.length;
      this.#heap.push(item);
      this.#up(item.slot);
      return;
    }
    const before = item.due;
    item.due = due;
    if (due < before) this.#up(item.slot);
    else if (due > before) this.#down(item.slot);
  }

  /** Takes out the item due first. */
  pop(): T | undefined {
    const top = this.#heap[0];
    if (top !== undefined) this.delete(top);
    return top;
  }

  /** Takes `item` out, if it is queued. */
  delete(item: T): void {
    const i = item.slot;
    if (i < 0) return;
    item.slot = -1;
    const last = this.#heap.pop()!;
    if (last === item) return;
    this.#heap[i] = last;
    last.slot = i;
    this.#up(i);
    this.#down(last.slot);
  }

  /** Empties the queue, then queues `items` at their `due` (in O(n), not O(n log n)). */
  reset(items: Iterable<T>): void {
    for (const item of this.#heap) item.slot = -1;
    this.#heap.length = 0;
    for (const item of items) {
      item.slot = this.#heap.length;
      this.#heap.push(item);
    }
    for (let i = (this.#heap.length >> 1) - 1; i >= 0; i--) this.#down(i);
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
