/**
 * Stands in for the `alerts` topic in embedded and replay modes: the engine pushes without waiting,
 * the notifier stage pulls batches. `drain` lets a replay finish only after every alert is delivered.
 */
export class AsyncQueue<T> {
  readonly #items: T[] = [];
  #waiter: (() => void) | null = null;
  #closed = false;
  #inFlight = 0;
  #idle: (() => void)[] = [];

  push(...items: T[]): void {
    if (this.#closed) throw new Error("Cannot push to a closed queue");
    this.#items.push(...items);
    this.#waiter?.();
  }

  /** Up to `max` items; waits for at least one; an empty array means closed and drained. */
  async take(max = 100): Promise<T[]> {
    while (this.#items.length === 0) {
      if (this.#closed) return [];
      await new Promise<void>((resolve) => this.#waiter = resolve);
      this.#waiter = null;
    }
    const batch = this.#items.splice(0, max);
    this.#inFlight += batch.length;
    return batch;
  }

  /** Marks a taken batch as handled. */
  done(count: number): void {
    this.#inFlight -= count;
    if (this.#inFlight === 0 && this.#items.length === 0) { for (const f of this.#idle.splice(0)) f(); }
  }

  /** Resolves when everything pushed so far has been taken and marked done. */
  drain(): Promise<void> {
    if (this.#inFlight === 0 && this.#items.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  close(): void {
    this.#closed = true;
    this.#waiter?.();
  }

  get length(): number {
    return this.#items.length;
  }
}
