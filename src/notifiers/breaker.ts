/** What a metrics scrape reads: plain data, no methods. */
export interface BreakerState {
  state: "closed" | "open" | "half-open";
  consecutive_failures: number;
  /** Times the breaker opened since start. */
  opened: number;
  /** When an open breaker lets a probe through (ISO time), null otherwise. */
  retry_at: string | null;
  /** What the last failure that counted was (e.g. "Delivery timed out"), null before any. */
  last_failure: string | null;
}

export interface BreakerOptions {
  /** Consecutive failed tries that open the breaker. */
  failureThreshold: number;
  /** How long an open breaker refuses tries before it lets one probe through. */
  cooldownMs: number;
}

export const DEFAULT_BREAKER: BreakerOptions = { failureThreshold: 5, cooldownMs: 10_000 };

/**
 * A circuit breaker for one notifier instance. Tries wait for `acquire` instead of failing at once,
 * so a notification refused by an open breaker is delayed, and dead-lettered only by its budget.
 * It is about the receiver being down: the caller reports only failures that say so (see
 * `countsAgainstReceiver` in `delivery.ts`).
 */
export class CircuitBreaker {
  #opts: BreakerOptions;
  #lastFailure: string | null = null;
  #state: BreakerState["state"] = "closed";
  #failures = 0;
  #opened = 0;
  #retryAt = 0;
  #probing = false;
  #waiters: (() => void)[] = [];

  constructor(opts: BreakerOptions = DEFAULT_BREAKER, readonly now: () => number = Date.now) {
    this.#opts = opts;
  }

  get state(): BreakerState {
    return {
      state: this.#state === "open" && this.now() >= this.#retryAt ? "half-open" : this.#state,
      consecutive_failures: this.#failures,
      opened: this.#opened,
      retry_at: this.#state === "open" ? new Date(this.#retryAt).toISOString() : null,
      last_failure: this.#lastFailure,
    };
  }

  /** Applies settings changed by a configuration reload; an open breaker keeps its current cooldown. */
  configure(opts: BreakerOptions): void {
    this.#opts = opts;
  }

  /** Takes a try at once if one may start now (closed, or the half-open probe); never waits. */
  tryAcquire(): boolean {
    if (this.#state === "closed") return true;
    if (this.#state === "open" && this.now() >= this.#retryAt) this.#state = "half-open";
    if (this.#state === "half-open" && !this.#probing) {
      this.#probing = true;
      return true;
    }
    return false;
  }

  /**
   * Resolves when a try may start: at once when closed, for a single probe when half-open. Resolves
   * false when `signal` aborts (or `deadline` passes) first.
   */
  async acquire(deadline: number, signal?: AbortSignal): Promise<boolean> {
    for (;;) {
      if (signal?.aborted || this.now() >= deadline) return false;
      if (this.tryAcquire()) return true;
      // Open, or half-open with a probe out: wait for a state change, the cooldown or the deadline.
      const waitMs = Math.max(
        1,
        Math.min(deadline, this.#state === "open" ? this.#retryAt : deadline) - this.now(),
      );
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(t);
          signal?.removeEventListener("abort", done);
          this.#waiters = this.#waiters.filter((w) => w !== done);
          resolve();
        };
        const t = setTimeout(done, waitMs);
        signal?.addEventListener("abort", done, { once: true });
        this.#waiters.push(done);
      });
    }
  }

  success(): void {
    this.#failures = 0;
    this.#probing = false;
    if (this.#state !== "closed") {
      this.#state = "closed";
      this.#wake();
    }
  }

  /** A try that failed because of the receiver (`why`: the error, kept for the DLQ record). */
  failure(why: string): void {
    this.#lastFailure = why;
    this.#failures++;
    const probeFailed = this.#state === "half-open";
    this.#probing = false;
    if (probeFailed || (this.#state === "closed" && this.#failures >= this.#opts.failureThreshold)) {
      this.#state = "open";
      this.#opened++;
      this.#retryAt = this.now() + this.#opts.cooldownMs;
      this.#wake();
    }
  }

  /** A try that says nothing about the receiver's health (aborted, a plugin's own error): lets the next probe go. */
  release(): void {
    if (this.#probing) {
      this.#probing = false;
      this.#wake();
    }
  }

  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }
}
