/** A manual clock for the notifier stage's timers (grouping, storm guard): time moves when the test says. */
import type { Clock } from "../../src/notifiers/clock.ts";

/** Timers that fire only when the test advances time. */
export class ManualClock implements Clock {
  #now = 0;
  #seq = 0;
  readonly #timers = new Map<number, { at: number; fn: () => void }>();

  now(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.#seq;
    this.#timers.set(id, { at: this.#now + ms, fn });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.#timers.delete(handle as number);
  }

  get timers(): number {
    return this.#timers.size;
  }

  /** Moves to `ms` (since the start), firing due timers in order and letting their deliveries run. */
  async at(ms: number): Promise<void> {
    for (let i = 0; i < 10_000; i++) {
      const next = [...this.#timers].filter(([, t]) => t.at <= ms).sort((a, b) => a[1].at - b[1].at)[0];
      if (next === undefined) break;
      this.#timers.delete(next[0]);
      this.#now = next[1].at;
      next[1].fn();
      await settle();
    }
    this.#now = ms;
    await settle();
  }
}

/** Lets promise chains (the group id's digest, the notifier call) run to their end. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 1));
}
