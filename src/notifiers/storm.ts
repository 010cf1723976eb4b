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

/**
 * Sensors whose held notifications an interval counts one by one: past twice this many the rarest are
 * dropped down to this many and their alerts counted in sum (`uncounted`), so a flood of distinct
 * sensor ids holds at most 20,000 counts (~7 MB with 128-character ids) per rule, and a sensor that
 * storms keeps its count.
 */
export const MAX_STORM_SENSORS = 10_000;

/**
 * Sensors a summary lists in `storm.by_sensor`: 12,000 listed made a 1.6 MB summary, which the DLQ
 * cuts at 64 K characters (so `dlq:replay` could not read it back) and a receiver may refuse.
 */
export const STORM_LISTED_SENSORS = 100;

/** Alerts notified as firing whose end the guard lets through, at most (~10 MB of ids). */
const MAX_NOTIFIED_FIRING = 100_000;

/**
 * Held alerts shown one by one (`holding`, `/api/alerts`' `held_by_storm_guard`), per interval and in
 * all: as many as the sensors counted one by one, so a flood of distinct alert ids cannot grow them.
 */
const MAX_SHOWN_HOLDS = 2 * MAX_STORM_SENSORS;

/** Sensors the summary's message names. */
const NAMED_SENSORS = 10;

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
  /** Called when what `holding` shows changed outside `hold` and `release` (a summary went out). */
  changed?: () => void;
}

interface Interval {
  start: number;
  sent: number;
  held: number;
  bySensor: Map<string, number>;
  /** Held alerts of the sensors dropped from `bySensor`. */
  uncounted: number;
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
  /** Alerts of capped rules notified as firing and not yet resolved (forgotten with their end). */
  readonly #notifiedFiring = new Set<string>();
  /**
   * Alerts whose latest notification was held, until a later one of theirs is notified or they
   * resolve (`release`): at most the firing alerts of capped rules, and at most `MAX_SHOWN_HOLDS`.
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
    // The end of an alert whose firing was notified is owed whatever the count: held back, the
    // receivers (a pager's incident) would keep it open for good.
    if (alert.state !== "firing" && this.#notifiedFiring.delete(alert.alert_id)) return null;
    let iv = this.#intervals.get(alert.rule_id);
    if (iv === undefined) {
      const now = this.#opts.clock.now();
      iv = {
        start: now,
        sent: 0,
        held: 0,
        bySensor: new Map(),
        uncounted: 0,
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
      if (alert.state === "firing") {
        this.#notifiedFiring.add(alert.alert_id);
        // Alerts that never resolve would grow it: past the bound the oldest is forgotten (its end
        // is then counted like any notification).
        if (this.#notifiedFiring.size > MAX_NOTIFIED_FIRING) {
          this.#notifiedFiring.delete(this.#notifiedFiring.values().next().value!);
        }
      }
      return null;
    }
    if (this.#closed !== null) return Promise.reject(this.#closed.reason);
    iv.held++;
    iv.bySensor.set(alert.sensor_id, (iv.bySensor.get(alert.sensor_id) ?? 0) + 1);
    if (iv.bySensor.size >= 2 * MAX_STORM_SENSORS) prune(iv);
    iv.last = alert;
    const hold = {
      rule_id: alert.rule_id,
      held_at: new Date(this.#opts.clock.now()).toISOString(),
      summarized: false,
    };
    // Bounded like the counts by sensor: past the bound a flood of distinct alerts is summed up
    // all the same, but the newest are not shown as held one by one.
    if (iv.holds.size < MAX_SHOWN_HOLDS) iv.holds.set(alert.alert_id, hold);
    // A resolved alert is not shown as held: nothing would ever release it.
    if (alert.state === "firing" && (this.#holds.size < MAX_SHOWN_HOLDS || this.#holds.has(alert.alert_id))) {
      this.#holds.set(alert.alert_id, hold);
    }
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
        this.#opts.changed?.();
        waiters.forEach((w) => w.resolve());
      },
      (err) => waiters.forEach((w) => w.reject(err)),
    );
  }
}

/** Most held first, then by name. */
function ranked(bySensor: Map<string, number>): [string, number][] {
  return [...bySensor].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
}

/** Keeps the `MAX_STORM_SENSORS` sensors with the most held alerts; the others' go to `uncounted`. */
function prune(iv: Interval): void {
  const all = ranked(iv.bySensor);
  for (const [, c] of all.slice(MAX_STORM_SENSORS)) iv.uncounted += c;
  iv.bySensor = new Map(all.slice(0, MAX_STORM_SENSORS));
}

function summary(iv: Interval, cap: NotificationCap, now: number): SensorAlert {
  const last = iv.last!;
  const bySensor = ranked(iv.bySensor);
  const n = (x: number) => x.toLocaleString("en-US");
  const shown = bySensor.slice(0, NAMED_SENSORS).map(([s, c]) => `${s}: ${n(c)}`).join(", ");
  const more =
    (bySensor.length > NAMED_SENSORS ? `, and ${n(bySensor.length - NAMED_SENSORS)} more sensors` : "") +
    (iv.uncounted > 0 ? `, and ${n(iv.uncounted)} more alerts of sensors not counted one by one` : "");
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
    storm: {
      held: iv.held,
      by_sensor: Object.fromEntries(bySensor.slice(0, STORM_LISTED_SENSORS)),
      per: `${cap.perMs / 1000}s`,
      sensors: bySensor.length,
      ...(iv.uncounted > 0 ? { uncounted: iv.uncounted } : {}),
    },
  };
}
