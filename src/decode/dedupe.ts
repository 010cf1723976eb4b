/**
 * Remembers the most recent `capacity` event ids so a redelivered event (a producer retry, or a
 * replay after a crash before the offset commit) is neither counted nor alerted on twice.
 */
export class DuplicateFilter {
  readonly #seen = new Set<string>();
  readonly #capacity: number;
  duplicates = 0;

  constructor(capacity = 100_000) {
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new RangeError(
        `Cannot create duplicate filter: capacity must be a positive integer, got ${capacity}`,
      );
    }
    this.#capacity = capacity;
  }

  /** Records `id`; returns true when it was already seen. */
  seen(id: string): boolean {
    if (this.#seen.has(id)) {
      this.duplicates++;
      return true;
    }
    this.#seen.add(id);
    if (this.#seen.size > this.#capacity) {
      // A Set iterates in insertion order, so the first entry is the oldest.
      const oldest = this.#seen.values().next().value as string;
      this.#seen.delete(oldest);
    }
    return false;
  }

  get size(): number {
    return this.#seen.size;
  }
}
