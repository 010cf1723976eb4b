import type { SensorAlert } from "../contract/schemas.ts";
import { type Logger, redact } from "../log.ts";
import type { OutRecord } from "../transport/output.ts";
import { type BreakerOptions, type BreakerState, CircuitBreaker, DEFAULT_BREAKER } from "./breaker.ts";
import type { NotifiersFile } from "./config.ts";
import { type AttemptRecord, notificationDlqRecords } from "./dead_letter.ts";
import { DeliveryError } from "./errors.ts";
import type { Notification, Notifier } from "./plugin.ts";
import { classifyError, retryDelay, type RetryPolicy } from "./policy.ts";
import { type Destination, route } from "./routes.ts";

export interface NotifierInstance {
  name: string;
  plugin: string;
  notifier: Notifier;
}

/** What the dispatcher works from; swapped as a whole on a configuration reload. */
export interface NotifierSet {
  config: NotifiersFile;
  instances: ReadonlyMap<string, NotifierInstance>;
  policy: RetryPolicy;
  breaker: BreakerOptions;
  maxInFlight: number;
}

export interface DispatcherOptions {
  notifiers: () => NotifierSet;
  logger: Logger;
  /** Writes DLQ records for notifications that failed for good; resolves once they are durable. */
  deadLetter: (records: OutRecord[]) => Promise<void>;
  dlqTopic: string;
  alertsTopic: string;
  random?: () => number;
}

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

export interface DeliverOptions {
  /** Called every few seconds during a long delivery (keeps a Kafka consumer in its group). */
  heartbeat?: () => Promise<void>;
}

/** A notification's id is stable for one alert state, so every retry and redelivery shares it. */
export function notificationId(alert: SensorAlert): string {
  // A repeat is a new notification (receivers that drop duplicate ids must still see it).
  const repeat = typeof alert["repeat"] === "number" && alert["repeat"] > 0 ? `.${alert["repeat"]}` : "";
  return `${alert.alert_id}.${alert.state}${repeat}`;
}

/** An acknowledgement update on the topic is state for consumers, not a new notification. */
export function isAckUpdate(a: SensorAlert): boolean {
  return a.acknowledged && a.state === "firing" && a["ack_update"] === true;
}

interface Job {
  n: Notification;
  receiver: string;
  group: Destination["group"];
}

type Outcome = { error: DeliveryError; attempts: AttemptRecord[]; deliveryId: string } | null;

interface Slot {
  stats: NotifierStats;
  breaker: CircuitBreaker;
  waiting: (() => void)[];
}

/**
 * The notifier stage: routes each alert to its receivers and resolves only once every delivery
 * succeeded or was recorded in the DLQ, which is what allows the caller to commit. Retries, the
 * circuit breaker and the in-flight window are per notifier instance.
 */
export class Dispatcher {
  readonly #opts: DispatcherOptions;
  readonly #slots = new Map<string, Slot>();
  readonly #groups = new Map<string, PendingGroup>();
  readonly #lastFlush = new Map<string, number>();
  readonly #stopping = new AbortController();

  constructor(opts: DispatcherOptions) {
    this.#opts = opts;
  }

  /** Totals over all notifiers. */
  get counters(): { delivered: number; failed: number; retried: number; dead_lettered: number } {
    const t = { delivered: 0, failed: 0, retried: 0, dead_lettered: 0 };
    for (const { stats } of this.#slots.values()) {
      t.delivered += stats.delivered;
      t.failed += stats.failed;
      t.retried += stats.retried;
      t.dead_lettered += stats.dead_lettered;
    }
    return t;
  }

  /** Plain data per notifier instance, for metrics. */
  stats(): Record<string, NotifierStats> {
    return Object.fromEntries(
      [...this.#slots].map(([name, s]) => [name, { ...s.stats, breaker: s.breaker.state }]),
    );
  }

  /** Routes and delivers; resolves when each alert is delivered or dead-lettered everywhere it goes. */
  deliver(alerts: readonly SensorAlert[], opts: DeliverOptions = {}): Promise<void> {
    const set = this.#opts.notifiers();
    const jobs: Job[] = [];
    for (const alert of alerts) {
      if (isAckUpdate(alert)) continue;
      const n = { id: notificationId(alert), alert };
      for (const d of route(set.config, alert)) jobs.push({ n, receiver: d.receiver, group: d.group });
    }
    return this.#run(set, jobs, opts);
  }

  /** Delivers straight to one notifier, bypassing routes (DLQ replay). */
  deliverTo(receiver: string, notifications: Notification[], opts: DeliverOptions = {}): Promise<void> {
    const set = this.#opts.notifiers();
    if (!set.instances.has(receiver)) throw new TypeError(`Unknown notifier "${receiver}"`);
    return this.#run(set, notifications.map((n) => ({ n, receiver, group: null })), opts);
  }

  /** Aborts retries and waits in progress: their alerts are neither delivered nor dead-lettered. */
  close(): void {
    this.#stopping.abort(new Error("Dispatcher is stopping"));
  }

  async #run(
    set: NotifierSet,
    jobs: Job[],
    opts: DeliverOptions,
  ): Promise<void> {
    if (jobs.length === 0) return;
    const beat = opts.heartbeat;
    const timer = beat ? setInterval(() => beat().catch(() => {}), 3000) : undefined;
    try {
      const results = await Promise.all(jobs.map(async ({ n, receiver, group }) => {
        const inst = set.instances.get(receiver)!;
        const outcome = group === null
          ? await this.#deliverBatch(set, inst, [n], n.id)
          : await this.#addToGroup(set, inst, group, n);
        return { n, inst, outcome };
      }));
      this.#stopping.signal.throwIfAborted();
      const failed: Notification[] = results.flatMap(({ n, inst, outcome }) =>
        outcome === null ? [] : [{
          ...n,
          failure: {
            notifier: inst.name,
            plugin: inst.plugin,
            delivery_id: outcome.deliveryId,
            attempts: outcome.attempts,
            error: outcome.error.message,
          },
        }]
      );
      if (failed.length > 0) await this.#deadLetter(set, failed);
    } finally {
      clearInterval(timer);
    }
  }

  /**
   * Hands notifications that failed for good to the `dlq` notifier (a plugin like the others); if
   * that fails too, writes the DLQ records directly: a notification never goes nowhere.
   */
  async #deadLetter(set: NotifierSet, failed: Notification[]): Promise<void> {
    const topics = { alerts: this.#opts.alertsTopic, dlq: this.#opts.dlqTopic };
    const dlq = set.instances.get("dlq");
    if (dlq !== undefined) {
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(new Error("dlq notifier timed out")), 30_000);
      try {
        await Promise.race([
          dlq.notifier.notify(failed, { signal: controller.signal, attempt: 1, id: failed[0]!.id }),
          new Promise((_, reject) =>
            controller.signal.addEventListener("abort", () => reject(controller.signal.reason))
          ),
        ]);
        return;
      } catch (err) {
        this.#opts.logger.error("The dlq notifier failed: writing the DLQ records directly", { error: err });
      } finally {
        clearTimeout(timer);
      }
    }
    await this.#opts.deadLetter(notificationDlqRecords(failed, topics));
  }

  #slot(set: NotifierSet, inst: NotifierInstance): Slot {
    let s = this.#slots.get(inst.name);
    if (s === undefined) {
      s = {
        stats: {
          plugin: inst.plugin,
          delivered: 0,
          failed: 0,
          retried: 0,
          dead_lettered: 0,
          in_flight: 0,
          breaker: new CircuitBreaker().state,
        },
        breaker: new CircuitBreaker(set.breaker ?? DEFAULT_BREAKER),
        waiting: [],
      };
      this.#slots.set(inst.name, s);
    }
    s.stats.plugin = inst.plugin;
    return s;
  }

  #addToGroup(
    set: NotifierSet,
    inst: NotifierInstance,
    g: NonNullable<Destination["group"]>,
    n: Notification,
  ): Promise<Outcome> {
    let pending = this.#groups.get(g.key);
    if (pending === undefined) {
      const now = Date.now();
      const last = this.#lastFlush.get(g.key);
      const delay = last === undefined || now - last >= g.intervalMs ? g.waitMs : last + g.intervalMs - now;
      const p: PendingGroup = { batch: [], flushed: Promise.resolve(null) };
      p.flushed = new Promise<void>((resolve) => {
        const t = setTimeout(resolve, delay);
        this.#stopping.signal.addEventListener("abort", () => {
          clearTimeout(t);
          resolve();
        }, { once: true });
      }).then(async () => {
        this.#groups.delete(g.key);
        this.#lastFlush.set(g.key, Date.now());
        for (const [k, at] of this.#lastFlush) {
          if (Date.now() - at > Math.max(g.intervalMs, 60_000)) this.#lastFlush.delete(k);
        }
        return await this.#deliverBatch(set, inst, p.batch, await batchId(p.batch));
      });
      this.#groups.set(g.key, pending = p);
    }
    pending.batch.push(n);
    return pending.flushed;
  }

  async #deliverBatch(
    set: NotifierSet,
    inst: NotifierInstance,
    batch: Notification[],
    id: string,
  ): Promise<Outcome> {
    const slot = this.#slot(set, inst);
    const { policy } = set;
    const stop = this.#stopping.signal;
    // The in-flight window: past it, a notification waits here (and keeps its commit waiting).
    if (slot.stats.in_flight >= set.maxInFlight) {
      await new Promise<void>((resolve) => slot.waiting.push(resolve));
    }
    slot.stats.in_flight++;
    try {
      const started = Date.now();
      const deadline = started + policy.giveUpAfterMs;
      const attempts: AttemptRecord[] = [];
      let last: DeliveryError | null = null;
      for (let attempt = 1; attempt <= policy.maxAttempts; attempt++) {
        if (!await slot.breaker.acquire(deadline, stop)) {
          stop.throwIfAborted();
          last = new DeliveryError(
            `Circuit breaker open since ${attempts.length} tries, retry budget of ${policy.giveUpAfterMs} ms spent`,
            { reason: "breaker", retryable: false },
          );
          break;
        }
        const error = await this.#try(inst, batch, id, attempt, policy.timeoutMs);
        if (error === null) {
          slot.breaker.success();
          slot.stats.delivered += batch.length;
          return null;
        }
        stop.throwIfAborted();
        slot.breaker.failure();
        slot.stats.failed++;
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
        if (!error.retryable || attempt === policy.maxAttempts) break;
        const delay = retryDelay(policy, attempt, error, this.#opts.random);
        if (Date.now() + delay > deadline) break;
        slot.stats.retried++;
        await sleep(delay, stop);
        stop.throwIfAborted();
      }
      slot.stats.dead_lettered += batch.length;
      this.#opts.logger.error("Notification dead-lettered", {
        notifier: inst.name,
        notification: id,
        attempts: attempts.length,
        error: redact(last?.message ?? "unknown"),
      });
      return { error: last!, attempts, deliveryId: id };
    } finally {
      slot.stats.in_flight--;
      slot.waiting.shift()?.();
    }
  }

  /** One call of the plugin, isolated: a throw or a hang past `timeoutMs` is a failed try. */
  async #try(
    inst: NotifierInstance,
    batch: Notification[],
    id: string,
    attempt: number,
    timeoutMs: number,
  ): Promise<DeliveryError | null> {
    const controller = new AbortController();
    const signal = AbortSignal.any([controller.signal, this.#stopping.signal]);
    let timedOut = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([
        Promise.resolve().then(() => inst.notifier.notify(batch, { id, signal, attempt })),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            timedOut = true;
            controller.abort();
            reject(new Error(`No answer within ${timeoutMs} ms`));
          }, timeoutMs);
          signal.addEventListener("abort", () => reject(signal.reason), { once: true });
        }),
      ]);
      return null;
    } catch (err) {
      return classifyError(err, timedOut);
    } finally {
      clearTimeout(timer);
    }
  }
}

interface PendingGroup {
  batch: Notification[];
  flushed: Promise<Outcome>;
}

/** The delivery id of a group: the same for the same notifications, in any order. */
async function batchId(batch: Notification[]): Promise<string> {
  if (batch.length === 1) return batch[0]!.id;
  const ids = batch.map((n) => n.id).sort().join("\n");
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(ids)));
  return `group.${[...digest.slice(0, 12)].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
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
