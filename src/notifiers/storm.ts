/**
 * The storm guard: a rule with `max_notifications` sends at most `count` notifications per `per`; the
 * ones beyond are held back and, when the interval ends, summed up in one notification ("and 3,412
 * more like it", with counts by sensor). The alerts themselves are on the alerts topic as always: only
 * notifications are held. A held alert is done (its offset may be committed) once its summary is
 * delivered or dead-lettered, so a stage that stops first reads it again.
 *
 * @module
 */
import type { SensorAlert } from "../contract/schemas.ts";
import type { Clock } from "./clock.ts";

/** A rule's cap, compiled from its `max_notifications`. */
export interface NotificationCap {
  count: number;
  perMs: number;
}

export interface StormGuardOptions {
  clock: Clock;
  /** The cap of a rule in force now, or null. */
  cap(ruleId: string): NotificationCap | null;
  /** Sends a summary like any notification of its rule; resolves once delivered or dead-lettered. */
  send(summary: SensorAlert): Promise<void>;
}

interface Interval {
  start: number;
  sent: number;
  held: number;
  bySensor: Map<string, number>;
  /** The newest held alert: the summary is routed as it is (rule, priority, labels). */
  last: SensorAlert | null;
  waiters: { resolve(): void; reject(err: unknown): void }[];
  timer: unknown;
  /** The cap it began under (a reload may change the rule's). */
  cap: NotificationCap;
  /** The held alerts, by id, as `holding` shows them. */
  holds: Map<string, StormHold>;
}

/** What `/api/alerts` shows of an alert whose notification the storm guard holds back. */
export interface StormHold {
  rule_id: string;
  /** When its notification was held (wall time, ISO). */
  held_at: string;
  /** True once its interval ended and the summary that stands for it was delivered or dead-lettered. */
  summarized: boolean;
}

/** Counters for metrics, by rule. */
export interface StormStats {
  held: number;
  summaries: number;
}

export class StormGuard {
  readonly #opts: StormGuardOptions;
  readonly #intervals = new Map<string, Interval>();
  readonly #stats = new Map<string, StormStats>();
  /**
   * Alerts whose latest notification was held, until a later one of theirs is notified or they
   * resolve (`release`): at most the firing alerts of capped rules.
   */
  readonly #holds = new Map<string, StormHold>();
  #closed: { reason: unknown } | null = null;
  /** Set by `endAll`: every interval ends at once, the ones started later too. */
  #ending = false;

  constructor(opts: StormGuardOptions) {
    this.#opts = opts;
  }

  /**
   * Null when the alert may be notified now; otherwise it is held, and the promise settles with its
   * summary's delivery.
   */
  hold(alert: SensorAlert): Promise<void> | null {
    if (alert.storm !== undefined) return null;
    const cap = this.#opts.cap(alert.rule_id);
    if (cap === null) return null;
    let iv = this.#intervals.get(alert.rule_id);
    if (iv === undefined) {
      const now = this.#opts.clock.now();
      iv = {
        start: now,
        sent: 0,
        held: 0,
        bySensor: new Map(),
        last: null,
        waiters: [],
        timer: null,
        holds: new Map(),
        cap,
      };
      const interval = iv;
      const ms = this.#ending ? 0 : cap.perMs;
      iv.timer = this.#opts.clock.setTimeout(() => this.#end(alert.rule_id, interval, cap), ms);
      this.#intervals.set(alert.rule_id, iv);
    }
    if (iv.sent < cap.count) {
      iv.sent++;
      return null;
    }
    if (this.#closed !== null) return Promise.reject(this.#closed.reason);
    iv.held++;
    iv.bySensor.set(alert.sensor_id, (iv.bySensor.get(alert.sensor_id) ?? 0) + 1);
    iv.last = alert;
    const hold = {
      rule_id: alert.rule_id,
      held_at: new Date(this.#opts.clock.now()).toISOString(),
      summarized: false,
    };
    iv.holds.set(alert.alert_id, hold);
    // A resolved alert is not shown as held: nothing would ever release it.
    if (alert.state === "firing") this.#holds.set(alert.alert_id, hold);
    const stats = this.#stats.get(alert.rule_id) ?? { held: 0, summaries: 0 };
    stats.held++;
    this.#stats.set(alert.rule_id, stats);
    const interval = iv;
    return new Promise<void>((resolve, reject) => interval.waiters.push({ resolve, reject }));
  }

  /** Whether this alert's latest notification is held back (or was summed up), or null. */
  holding(alertId: string): StormHold | null {
    return this.#holds.get(alertId) ?? null;
  }

  /** The alert was notified after all, or its episode ended: it is no longer shown as held. */
  release(alertId: string): void {
    this.#holds.delete(alertId);
  }

  stats(): ReadonlyMap<string, StormStats> {
    return this.#stats;
  }

  /**
   * Sums up what is held now, and from now on ends each interval as soon as it began: embedded and
   * replay modes call it when their input ended, since no one reads their held alerts again (a stop
   * would otherwise wait for the end of an interval of up to `per`).
   */
  endAll(): void {
    this.#ending = true;
    for (const [rule, iv] of [...this.#intervals]) {
      this.#opts.clock.clearTimeout(iv.timer);
      this.#end(rule, iv, iv.cap);
    }
  }

  /** Ends every interval: what is held is neither summed up nor done (its offsets stay uncommitted). */
  close(reason: unknown): void {
    this.#closed = { reason };
    for (const iv of this.#intervals.values()) {
      this.#opts.clock.clearTimeout(iv.timer);
      for (const w of iv.waiters) w.reject(reason);
    }
    this.#intervals.clear();
  }

  #end(ruleId: string, iv: Interval, cap: NotificationCap): void {
    this.#intervals.delete(ruleId);
    if (iv.last === null) return;
    this.#stats.get(ruleId)!.summaries++;
    const waiters = iv.waiters;
    this.#opts.send(summary(iv, cap, this.#opts.clock.now())).then(
      () => {
        for (const h of iv.holds.values()) h.summarized = true;
        waiters.forEach((w) => w.resolve());
      },
      (err) => waiters.forEach((w) => w.reject(err)),
    );
  }
}

function summary(iv: Interval, cap: NotificationCap, now: number): SensorAlert {
  const last = iv.last!;
  const bySensor = [...iv.bySensor].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  const n = (x: number) => x.toLocaleString("en-US");
  const shown = bySensor.slice(0, 10).map(([s, c]) => `${s}: ${n(c)}`).join(", ");
  const more = bySensor.length > 10 ? `, and ${n(bySensor.length - 10)} more sensors` : "";
  const { ack_update: _, event: _event, ...rest } = last;
  return {
    ...rest,
    // One id per rule and interval: a redelivered summary keeps it.
    alert_id: `storm.${last.rule_id}.${iv.start}`,
    state: "firing",
    repeat: 0,
    message: `${last.message} — and ${n(iv.held)} more like it in ${cap.perMs / 1000}s (${shown}${more}); ` +
      `rule "${last.rule_id}" sends at most ${n(cap.count)} notifications per ${cap.perMs / 1000}s`,
    timestamp: new Date(now).toISOString(),
    raised_at: new Date(now).toISOString(),
    storm: { held: iv.held, by_sensor: Object.fromEntries(bySensor), per: `${cap.perMs / 1000}s` },
  };
}
