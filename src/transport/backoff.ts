export interface BackoffOptions {
  /** The first delay (default 1 s). */
  initialMs?: number;
  /** No delay is longer (default 30 s). */
  maxMs?: number;
  /** How long things must have gone well, from `healthy()`, before the delays start over (default 60 s). */
  healthyMs?: number;
  now?: () => number;
}

/**
 * Capped exponential backoff that starts over after a healthy period: a consumer that crashes once
 * an hour waits 1 s each time, one that crashes in a loop waits up to `maxMs` between attempts.
 */
export class Backoff {
  readonly #initial: number;
  readonly #max: number;
  readonly #healthyMs: number;
  readonly #now: () => number;
  #failures = 0;
  #healthySince: number | null = null;

  constructor(opts: BackoffOptions = {}) {
    this.#initial = opts.initialMs ?? 1000;
    this.#max = opts.maxMs ?? 30_000;
    this.#healthyMs = opts.healthyMs ?? 60_000;
    this.#now = opts.now ?? Date.now;
  }

  /** Failures since the last start-over. */
  get failures(): number {
    return this.#failures;
  }

  /** Records a failure and returns how long to wait before the next attempt. */
  next(): number {
    if (this.#healthySince !== null && this.#now() - this.#healthySince >= this.#healthyMs) {
      this.#failures = 0;
    }
    this.#healthySince = null;
    const delay = Math.min(this.#max, this.#initial * 2 ** Math.min(this.#failures, 30));
    this.#failures++;
    return delay;
  }

  /** Things work from now on (a group joined, a request answered); kept if already healthy. */
  healthy(): void {
    this.#healthySince ??= this.#now();
  }

  /** Starts over at once. */
  reset(): void {
    this.#failures = 0;
    this.#healthySince = null;
  }
}
