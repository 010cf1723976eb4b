/**
 * Delivery to one notifier instance at a time: its queue, its in-flight window, retries within the
 * time budget, its circuit breaker, the timeout of each try, and the dead-letter fallback. Each
 * instance has a lane of its own, so a slow or dead receiver holds only its own notifications.
 *
 * @module
 */
import { type Logger, redact } from "../log.ts";
import type { OutRecord } from "../transport/output.ts";
import { type BreakerState, CircuitBreaker } from "./breaker.ts";
import { notificationDlqRecords } from "./dead_letter.ts";
import { DeliveryError } from "./errors.ts";
import type { AttemptRecord, Notification } from "./plugin.ts";
import { classifyError, retryDelay } from "./policy.ts";
import type { NotifierInstance, NotifierSet } from "./set.ts";

/** Per notifier instance, read by the metrics endpoint at scrape time. Counts are of alerts, not requests. */
export interface NotifierStats {
  plugin: string;
  delivered: number;
  /** Failed tries (each retry that fails counts). */
  failed: number;
  retried: number;
  dead_lettered: number;
  in_flight: number;
  breaker: BreakerState;
}

export interface DeliveriesOptions {
  logger: Logger;
  /** Writes DLQ records for notifications that failed for good; resolves once they are durable. */
  deadLetter: (records: OutRecord[]) => Promise<void>;
  dlqTopic: string;
  alertsTopic: string;
  random?: () => number;
  /**
   * How long a try in flight when the stage stops may still take before it is aborted (default
   * `STOP_GRACE_MS`). Aborted, its notification is sent again by the partition's next reader, and
   * the receiver, which may have had it already, hears it twice: a rolling restart would page again.
   */
  stopGraceMs?: number;
}

/** Half of SHUTDOWN_TIMEOUT_MS's default: the rest is left to commit the offsets and close. */
export const STOP_GRACE_MS = 10_000;

/**
 * Whether a failed try says the receiver is down or overloaded, which is what the circuit breaker
 * is about: timeouts, connection errors, 5xx and 429 (a receiver that sheds load is helped by a
 * pause of every notification, not only by the one that got the `Retry-After`). A 4xx other than
 * 429 is about one request (an over-long message, a bad token) and proves the receiver answers.
 */
export function countsAgainstReceiver(error: DeliveryError): boolean {
  return error.reason === "timeout" || error.reason === "network" || error.reason === "server" ||
    error.reason === "rate-limited";
}

interface Item {
  inst: NotifierInstance;
  batch: Notification[];
  id: string;
  deadline: number;
  resolve: (delivered: boolean) => void;
  reject: (err: unknown) => void;
}

interface Lane {
  stats: NotifierStats;
  breaker: CircuitBreaker;
  queue: Item[];
  running: number;
  /** Past `max_queued`: new notifications go to the DLQ until the queue is down to half. */
  shedding: boolean;
}

type Outcome = { error: DeliveryError; attempts: AttemptRecord[] } | null;

/** The lanes of every notifier instance of the process. */
export class Deliveries {
  readonly #opts: DeliveriesOptions;
  readonly #lanes = new Map<string, Lane>();
  /** No new try, retry or wait once aborted. */
  readonly #stopping = new AbortController();
  /** Aborts the tries still in flight, `stopGraceMs` after the stop. */
  readonly #cutOff = new AbortController();
  readonly #tries = new Set<Promise<unknown>>();
  /** Dead-letter writes under way. */
  readonly #deadLetters = new Set<Promise<void>>();

  constructor(opts: DeliveriesOptions) {
    this.#opts = opts;
  }

  /** Plain data per notifier instance, for metrics. */
  stats(): Record<string, NotifierStats> {
    return Object.fromEntries(
      [...this.#lanes].map(([name, l]) => [name, { ...l.stats, breaker: l.breaker.state }]),
    );
  }

  /**
   * Queues one notification (a batch of one, or a group) for `inst`. Resolves once it is delivered
   * or dead-lettered; by `deadline` (ms since the epoch) it is one or the other, unless the service
   * stops first: then it rejects, and the caller must not commit its offsets.
   */
  send(
    set: NotifierSet,
    inst: NotifierInstance,
    batch: Notification[],
    id: string,
    deadline: number,
  ): Promise<boolean> {
    if (this.#stopping.signal.aborted) return Promise.reject(this.#stopping.signal.reason);
    const lane = this.#lane(set, inst);
    if (set.onFull === "dead_letter" && lane.queue.length >= set.maxQueued) {
      return this.#shed(set, lane, inst, batch, id);
    }
    return new Promise<boolean>((resolve, reject) => {
      lane.queue.push({ inst, batch, id, deadline, resolve, reject });
      this.#pump(set, lane);
    });
  }

  /**
   * A notifier that holds `max_queued` notifications is dead or far too slow: a new one goes to the
   * DLQ at once (replayable with `deno task dlq:replay`), so its backlog neither grows without bound
   * nor holds up the receivers that keep up. Measured with one receiver hanging at 1,000 alerts/s:
   * with `pause` the healthy receiver got 7,010 of ~12,000 alerts in the run, as every partition fed
   * both; with `dead_letter` it got them all (scripts/bench/notify.ts).
   */
  async #shed(
    set: NotifierSet,
    lane: Lane,
    inst: NotifierInstance,
    batch: Notification[],
    id: string,
  ): Promise<boolean> {
    lane.stats.dead_lettered += batch.length;
    const error =
      `Notifier backlog full: ${lane.queue.length} notifications queued (max_queued ${set.maxQueued})`;
    if (!lane.shedding) {
      lane.shedding = true;
      this.#opts.logger.error("Notifier backlog full: new notifications go to the DLQ", {
        notifier: inst.name,
        queued: lane.queue.length,
      });
    }
    await this.#deadLetter(
      set,
      batch.map((n) => ({
        ...n,
        failure: { notifier: inst.name, plugin: inst.plugin, delivery_id: id, attempts: [], error },
      })),
    );
    return false;
  }

  /**
   * Aborts queued notifications, retries and waits in progress: they are neither delivered nor
   * dead-lettered. A try in flight may finish within `stopGraceMs` (the receiver may have it
   * already: one that answers is delivered, not sent again); resolves once none is left.
   */
  close(): Promise<void> {
    const reason = new Error("The notifier stage is stopping");
    this.#stopping.abort(reason);
    for (const lane of this.#lanes.values()) {
      for (const item of lane.queue.splice(0)) item.reject(reason);
    }
    if (this.#tries.size === 0) {
      this.#cutOff.abort(reason);
      return Promise.resolve();
    }
    const cut = setTimeout(() => this.#cutOff.abort(reason), this.#opts.stopGraceMs ?? STOP_GRACE_MS);
    return Promise.allSettled([...this.#tries]).then(() => clearTimeout(cut));
  }

  /**
   * Resolves once the tries in flight now have ended and what they ended is settled: delivered,
   * dead-lettered (its DLQ record written), or back to waiting for its next try. Notifications
   * queued behind the in-flight window and retries not yet due are not waited for: what a hand-over
   * at a rebalance waits for, where waiting for every notification meant waiting for a dead
   * receiver's retries (minutes).
   */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.#tries]);
    // A try's outcome reaches `#deadLetter` within the microtasks that follow it.
    await new Promise((r) => setTimeout(r, 0));
    await Promise.allSettled([...this.#deadLetters]);
  }

  #lane(set: NotifierSet, inst: NotifierInstance): Lane {
    let lane = this.#lanes.get(inst.name);
    if (lane === undefined) {
      const breaker = new CircuitBreaker(set.breaker);
      lane = {
        stats: {
          plugin: inst.plugin,
          delivered: 0,
          failed: 0,
          retried: 0,
          dead_lettered: 0,
          in_flight: 0,
          breaker: breaker.state,
        },
        breaker,
        queue: [],
        running: 0,
        shedding: false,
      };
      this.#lanes.set(inst.name, lane);
    }
    lane.stats.plugin = inst.plugin;
    // A reload's breaker settings apply to a notifier that already has state, too.
    lane.breaker.configure(set.breaker);
    return lane;
  }

  /** Starts queued items while the window has room; synchronous, so the window is never exceeded. */
  #pump(set: NotifierSet, lane: Lane): void {
    while (lane.running < set.maxInFlight && lane.queue.length > 0 && !this.#stopping.signal.aborted) {
      const item = lane.queue.shift()!;
      if (lane.shedding && lane.queue.length < set.maxQueued / 2) {
        lane.shedding = false;
        this.#opts.logger.warn("Notifier backlog down to half: notifications are queued again", {
          notifier: item.inst.name,
        });
      }
      lane.running++;
      lane.stats.in_flight = lane.running;
      this.#run(set, lane, item).then(item.resolve, item.reject).finally(() => {
        lane.running--;
        lane.stats.in_flight = lane.running;
        this.#pump(set, lane);
      });
    }
  }

  async #run(set: NotifierSet, lane: Lane, item: Item): Promise<boolean> {
    const outcome = await this.#attempts(set, lane, item);
    if (outcome === null) return true;
    lane.stats.dead_lettered += item.batch.length;
    this.#opts.logger.error("Notification dead-lettered", {
      notifier: item.inst.name,
      notification: item.id,
      attempts: outcome.attempts.length,
      error: redact(outcome.error.message),
    });
    await this.#deadLetter(
      set,
      item.batch.map((n) => ({
        ...n,
        failure: {
          notifier: item.inst.name,
          plugin: item.inst.plugin,
          delivery_id: item.id,
          attempts: outcome.attempts,
          error: outcome.error.message,
        },
      })),
    );
    return false;
  }

  /**
   * Tries until delivered, a permanent failure, `max_attempts`, or the deadline. The deadline is the
   * budget users reason about: a retry whose backoff would pass it is made at the deadline instead.
   */
  async #attempts(set: NotifierSet, lane: Lane, item: Item): Promise<Outcome> {
    const { policy } = set;
    const stop = this.#stopping.signal;
    const { inst, batch, id, deadline } = item;
    const attempts: AttemptRecord[] = [];
    let last: DeliveryError | null = null;
    let final = false;
    for (let attempt = 1; attempt <= policy.maxAttempts; attempt++) {
      const may = final ? lane.breaker.tryAcquire() : await lane.breaker.acquire(deadline, stop);
      stop.throwIfAborted();
      if (!may) {
        last = this.#budgetSpent(set, lane, attempts.length, last);
        break;
      }
      const error = await this.#try(inst, batch, id, attempt, policy.timeoutMs);
      if (error === null) {
        lane.breaker.success();
        lane.stats.delivered += batch.length;
        return null;
      }
      stop.throwIfAborted();
      if (countsAgainstReceiver(error)) lane.breaker.failure(redact(error.message));
      else if (error.reason === "client") lane.breaker.success();
      else lane.breaker.release();
      lane.stats.failed++;
      last = error;
      attempts.push({
        attempt,
        at: new Date().toISOString(),
        reason: error.reason,
        ...(error.status !== undefined ? { status: error.status } : {}),
        error: redact(error.message),
      });
      this.#opts.logger.warn("Notification failed", {
        notifier: inst.name,
        notification: id,
        attempt,
        reason: error.reason,
        error: redact(error.message),
      });
      if (!error.retryable || attempt === policy.maxAttempts || final) break;
      const left = deadline - Date.now();
      if (left <= 0) break;
      const delay = retryDelay(policy, attempt, error, this.#opts.random);
      final = delay >= left;
      lane.stats.retried++;
      await sleep(Math.min(delay, left), stop);
      stop.throwIfAborted();
    }
    return { error: last!, attempts };
  }

  #budgetSpent(set: NotifierSet, lane: Lane, tries: number, last: DeliveryError | null): DeliveryError {
    const b = lane.breaker.state;
    const budget = `the retry budget of ${set.policy.giveUpAfterMs} ms is spent`;
    if (b.state !== "closed") {
      const why = b.last_failure ?? last?.message;
      return new DeliveryError(
        `Circuit breaker ${b.state} after ${b.consecutive_failures} failures in a row${
          why ? ` (last: ${why})` : ""
        } and ${budget} (${tries} tries of this notification)`,
        { reason: "breaker", retryable: false },
      );
    }
    return new DeliveryError(
      tries === 0
        ? `Waited in the notifier's queue until ${budget} (behind ${set.maxInFlight} in flight)`
        : `${last?.message ?? "Failed"}, and ${budget}`,
      { reason: last?.reason ?? "timeout", retryable: false },
    );
  }

  /** One call of the plugin, isolated: a throw or a hang past `timeoutMs` is a failed try. */
  async #try(
    inst: NotifierInstance,
    batch: Notification[],
    id: string,
    attempt: number,
    timeoutMs: number,
  ): Promise<DeliveryError | null> {
    const attemptDone = withTimeout(
      (signal) => inst.notifier.notify(batch, { id, signal, attempt }),
      timeoutMs,
      this.#cutOff.signal,
    );
    this.#tries.add(attemptDone);
    try {
      await attemptDone;
      return null;
    } catch (err) {
      return classifyError(err, err instanceof TimeoutError);
    } finally {
      this.#tries.delete(attemptDone);
    }
  }

  /**
   * Hands notifications that failed for good to the `dlq` notifier (a plugin like the others); if
   * that fails too, writes the DLQ records directly: a notification never goes nowhere.
   */
  #deadLetter(set: NotifierSet, failed: Notification[]): Promise<void> {
    const writing = this.#writeDeadLetters(set, failed);
    this.#deadLetters.add(writing);
    const forget = () => this.#deadLetters.delete(writing);
    writing.then(forget, forget);
    return writing;
  }

  async #writeDeadLetters(set: NotifierSet, failed: Notification[]): Promise<void> {
    const dlq = set.instances.get("dlq");
    if (dlq !== undefined) {
      try {
        await withTimeout(
          (signal) => dlq.notifier.notify(failed, { signal, attempt: 1, id: failed[0]!.id }),
          30_000,
          this.#stopping.signal,
        );
        return;
      } catch (err) {
        this.#stopping.signal.throwIfAborted();
        this.#opts.logger.error("The dlq notifier failed: writing the DLQ records directly", { error: err });
      }
    }
    const topics = { alerts: this.#opts.alertsTopic, dlq: this.#opts.dlqTopic };
    await this.#opts.deadLetter(notificationDlqRecords(failed, topics));
  }
}

class TimeoutError extends Error {}

/**
 * Runs `fn` with a signal that aborts after `ms` or when `parent` aborts, and settles by then even
 * when `fn` ignores its signal (a plugin that hangs).
 */
async function withTimeout<T>(
  fn: (signal: AbortSignal) => Promise<T>,
  ms: number,
  parent: AbortSignal,
): Promise<T> {
  const controller = new AbortController();
  const signal = AbortSignal.any([controller.signal, parent]);
  let timer: ReturnType<typeof setTimeout> | undefined;
  let onAbort: (() => void) | undefined;
  try {
    return await Promise.race([
      Promise.resolve().then(() => fn(signal)),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          const e = new TimeoutError(`No answer within ${ms} ms`);
          controller.abort(e);
          reject(e);
        }, ms);
        onAbort = () => reject(signal.reason);
        signal.addEventListener("abort", onAbort, { once: true });
      }),
    ]);
  } finally {
    clearTimeout(timer);
    if (onAbort) signal.removeEventListener("abort", onAbort);
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}
