import type { SensorAlert } from "../contract/schemas.ts";
import type { Logger } from "../log.ts";
import type { OutRecord } from "../transport/output.ts";
import { type Clock, realClock } from "./clock.ts";
import { Deliveries, type NotifierStats } from "./delivery.ts";
import { DeliveryError } from "./errors.ts";
import { Grouper, MAX_REPEATED, MAX_REPEATED_PER_GROUP } from "./grouping.ts";
import type { Notification } from "./plugin.ts";
import { route } from "./routes.ts";
import type { NotifierSet } from "./set.ts";
import type { SilenceGate } from "./silences/gate.ts";
import { type NotificationCap, StormGuard, type StormHold, type StormStats } from "./storm.ts";
import { type CompiledInhibition, type InhibitedAlert, Inhibitor } from "../rules/inhibit.ts";

export type { NotifierInstance, NotifierSet } from "./set.ts";
export type { NotifierStats } from "./delivery.ts";

export interface DispatcherOptions {
  notifiers: () => NotifierSet;
  logger: Logger;
  /** Writes DLQ records for notifications that failed for good; resolves once they are durable. */
  deadLetter: (records: OutRecord[]) => Promise<void>;
  dlqTopic: string;
  alertsTopic: string;
  random?: () => number;
  /** How long a try in flight at the stop may still take (`Deliveries`' `stopGraceMs`). */
  stopGraceMs?: number;
  /** The clock of grouping and the storm guard (tests pass a manual one). */
  clock?: Clock;
  /** Holds silenced alerts back, and hands them in again when their silence ends. */
  silences?: SilenceGate;
  /** The inhibit rules in force (src/rules/inhibit.ts); none when left out. */
  inhibitions?: () => readonly CompiledInhibition[];
  /** A rule's storm guard (`max_notifications`), or null (src/notifiers/storm.ts). */
  maxNotifications?: (ruleId: string) => NotificationCap | null;
  /**
   * False for a rule with `notify_resolved: false`: no resolved notice ends its alerts, so a route's
   * `repeat_interval` does not re-send them. Alerts of rules it does not know are taken to send theirs.
   */
  notifiesResolved?: (ruleId: string) => boolean;
}

/** Why an alert is not notified now, beyond silences: what `/api/alerts` shows per alert. */
export interface NotificationStatus {
  /** The firing source alert of an inhibit rule that keeps this alert from being notified. */
  inhibited_by: Pick<InhibitedAlert, "alert_id" | "rule_id" | "sensor_id"> | null;
  /** Set when its rule's storm guard (`max_notifications`) held its latest notification back. */
  held_by_storm_guard: StormHold | null;
}

/** What `submit` took on. */
export interface Submitted {
  /**
   * Resolves once each alert is delivered or dead-lettered everywhere it goes (what allows the
   * caller to commit its offsets); rejects when the stage stops first.
   */
  done: Promise<void>;
  /** Receivers that now hold `max_queued` unfinished notifications or more: pause what feeds them. */
  full: string[];
}

/** A notification's id is stable for one alert state, so every retry and redelivery shares it. */
export function notificationId(alert: SensorAlert): string {
  // A repeat is a new notification (receivers that drop duplicate ids must still see it). The alert
  // comes off the topic, where the service's own fields are not validated: check the type.
  const repeat = typeof alert.repeat === "number" && alert.repeat > 0 ? `.${alert.repeat}` : "";
  // An escalation and a flapping notice are new notifications too (src/alerts/noise.ts).
  const escalation = typeof alert.escalation === "number" && alert.escalation > 0
    ? `.esc${alert.escalation}`
    : "";
  // The stable notice after flapping may reuse an id and state already notified before the flapping.
  const flapping = alert.flapping === true ? ".flapping" : alert.flapping === false ? ".stable" : "";
  return `${alert.alert_id}.${alert.state}${repeat}${escalation}${flapping}`;
}

/** An acknowledgement update on the topic is state for consumers, not a new notification. */
export function isAckUpdate(a: SensorAlert): boolean {
  return a.acknowledged && a.state === "firing" && a.ack_update === true;
}

/**
 * The notifier stage's routing: each alert goes to its receivers, on its own or through its group,
 * and each receiver's lane delivers independently of the others. `submit` returns at once; its
 * `done` settles per batch so the caller commits only what is delivered or dead-lettered.
 */
export class Dispatcher {
  readonly #opts: DispatcherOptions;
  readonly #clock: Clock;
  readonly #deliveries: Deliveries;
  readonly #grouper: Grouper;
  readonly #storm: StormGuard | null;
  readonly #inhibitor: Inhibitor | null;
  /** Per receiver: notifications taken on and not yet delivered or dead-lettered. */
  readonly #unfinished = new Map<string, number>();
  /** Per receiver: firing alerts dropped from its groups' repeats past the bounds. */
  readonly #repeatsDropped = new Map<string, number>();
  #roomWaiters: { receivers: string[]; resolve: () => void }[] = [];
  #closed = false;
  /** Moves whenever `notificationStatus` may answer otherwise (see `statusVersion`). */
  #statusVersion = 0;

  constructor(opts: DispatcherOptions) {
    this.#opts = opts;
    this.#clock = opts.clock ?? realClock;
    this.#deliveries = new Deliveries({
      logger: opts.logger,
      deadLetter: opts.deadLetter,
      dlqTopic: opts.dlqTopic,
      alertsTopic: opts.alertsTopic,
      ...(opts.random ? { random: opts.random } : {}),
      ...(opts.stopGraceMs !== undefined ? { stopGraceMs: opts.stopGraceMs } : {}),
    });
    this.#grouper = new Grouper({
      clock: this.#clock,
      flush: (receiver, batch, id) => {
        const set = this.#opts.notifiers();
        // A receiver a reload removed while its group waited fails for good: the DLQ keeps the alerts.
        const inst = set.instances.get(receiver) ?? missing(receiver);
        return this.#deliveries.send(set, inst, batch, id, Date.now() + set.policy.giveUpAfterMs);
      },
      // Kept for repeats only what a resolved notice will end: a storm summary has none, nor has an
      // alert of a rule with notify_resolved: false (each episode a new alert id). Kept, 100 such
      // episodes an hour made each 4-hourly repeat re-send all 2,400 of a day, for ever.
      repeatable: (n) =>
        n.alert.storm === undefined && (this.#opts.notifiesResolved?.(n.alert.rule_id) ?? true),
      // Silenced or inhibited since it was sent: its repeats wait with it (a silence that ends lets the
      // next repeat include it again; a new notice of it is held or inhibited on its own way in).
      // An acknowledged alert is not notified again (README, the ack API): its repeats stop too.
      muted: (n) =>
        n.alert.acknowledged ||
        (this.#opts.silences?.silenced(n.alert) ?? false) ||
        (this.#inhibitor?.inhibitedBy(n.alert) ?? null) !== null,
      dropped: (receiver) => {
        const before = this.#repeatsDropped.get(receiver) ?? 0;
        this.#repeatsDropped.set(receiver, before + 1);
        if (before === 0) {
          this.#opts.logger.warn(
            `Firing alerts dropped from repeats: a group keeps at most ${MAX_REPEATED_PER_GROUP}, all groups ` +
              `${MAX_REPEATED} (the oldest go; counted in sensor_notification_repeats_dropped_total)`,
            { notifier: receiver },
          );
        }
      },
    });
    opts.silences?.attach((alerts) => this.submit(alerts).done);
    this.#inhibitor = opts.inhibitions === undefined
      ? null
      : new Inhibitor(opts.inhibitions, (ruleId) => opts.notifiesResolved?.(ruleId) ?? true);
    const cap = opts.maxNotifications;
    this.#storm = cap === undefined ? null : new StormGuard({
      clock: this.#clock,
      cap,
      send: (summary) => this.submit([summary]).done,
      changed: () => this.#statusVersion++,
    });
  }

  /** An alert read from any partition of the alerts topic: what inhibition knows to be firing. */
  observeFiring(alert: SensorAlert): void {
    this.#statusVersion++;
    this.#inhibitor?.observe(alert);
  }

  /**
   * Judged now, for `/api/alerts`: inhibition from the alerts firing now (as Alertmanager shows it),
   * the storm guard from what it did with the alert's latest notification.
   */
  notificationStatus(alert: SensorAlert): NotificationStatus {
    const source = this.#inhibitor?.inhibitedBy(alert) ?? null;
    return {
      inhibited_by: source === null
        ? null
        : { alert_id: source.alert_id, rule_id: source.rule_id, sensor_id: source.sensor_id },
      held_by_storm_guard: this.#storm?.holding(alert.alert_id) ?? null,
    };
  }

  /**
   * Moves whenever `notificationStatus` may answer otherwise: an alert seen firing or ending (what
   * inhibits), an alert submitted (what the storm guard holds), a storm's summary sent. `/api/alerts`
   * is shared between requests while it holds.
   */
  get statusVersion(): number {
    return this.#statusVersion;
  }

  /** The input ended (embedded and replay modes): the storm guard sums up what it holds now. */
  endStorms(): void {
    this.#statusVersion++;
    this.#storm?.endAll();
  }

  /** Notifications not sent because of an inhibition, by rule. */
  inhibitedCounts(): ReadonlyMap<string, number> {
    return this.#inhibitor?.counts() ?? new Map();
  }

  /** Firing alerts inhibition forgot at its cap (`MAX_FIRING`, src/rules/inhibit.ts). */
  get inhibitSourcesDropped(): number {
    return this.#inhibitor?.dropped ?? 0;
  }

  /** Notifications the storm guard held back, and summaries it sent, by rule. */
  stormStats(): ReadonlyMap<string, StormStats> {
    return this.#storm?.stats() ?? new Map();
  }

  /** Totals over all notifiers. */
  get counters(): { delivered: number; failed: number; retried: number; dead_lettered: number } {
    const t = { delivered: 0, failed: 0, retried: 0, dead_lettered: 0 };
    for (const s of Object.values(this.#deliveries.stats())) {
      t.delivered += s.delivered;
      t.failed += s.failed;
      t.retried += s.retried;
      t.dead_lettered += s.dead_lettered;
    }
    return t;
  }

  /** Plain data per notifier instance, for metrics. */
  stats(): Record<string, NotifierStats> {
    return this.#deliveries.stats();
  }

  /** Firing alerts dropped from repeats past the bounds (`MAX_REPEATED_PER_GROUP`, `MAX_REPEATED`), by receiver. */
  repeatsDropped(): ReadonlyMap<string, number> {
    return this.#repeatsDropped;
  }

  /** Groups waiting for their next notification or interval. */
  get groups(): number {
    return this.#grouper.size;
  }

  /** Notifications `receiver` has taken on and not finished (queued, grouped or in flight). */
  unfinished(receiver: string): number {
    return this.#unfinished.get(receiver) ?? 0;
  }

  /**
   * Routes and hands each alert to its receivers' lanes or groups, without waiting for delivery.
   * `partition` is the alerts-topic partition they came from (the owner of what a silence holds).
   */
  submit(alerts: readonly SensorAlert[], partition?: number): Submitted {
    this.#statusVersion++;
    const set = this.#opts.notifiers();
    const now = Date.now();
    const all: Promise<void>[] = [];
    const touched = new Set<string>();
    let held = false;
    for (const alert of alerts) {
      this.#inhibitor?.observe(alert);
      if (alert.state !== "firing") {
        this.#storm?.release(alert.alert_id);
        // Ended wherever its notice goes (escalated, relabelled, silenced or inhibited): no group repeats it.
        this.#grouper.resolved(alert.alert_id);
      }
      if (isAckUpdate(alert)) {
        this.#grouper.acknowledged(alert.alert_id);
        continue;
      }
      if (this.#inhibitor?.inhibits(alert)) continue;
      if (this.#opts.silences?.hold(alert, partition)) {
        held = true;
        continue;
      }
      const capped = this.#storm?.hold(alert);
      if (capped) {
        all.push(capped);
        continue;
      }
      this.#storm?.release(alert.alert_id);
      const n = { id: notificationId(alert), alert };
      const destinations = route(set.config, alert);
      if (alert.state === "firing") {
        // Groups that keep an older notice of it, and that this one does not go to, stop repeating it.
        this.#grouper.moved(
          alert.alert_id,
          new Set(destinations.flatMap((d) => d.group === null ? [] : [d.group.key])),
        );
      }
      for (const d of destinations) {
        const inst = set.instances.get(d.receiver)!;
        const done = d.group === null
          ? this.#deliveries.send(set, inst, [n], n.id, now + set.policy.giveUpAfterMs)
          : this.#grouper.add(d.receiver, d.group, n);
        all.push(this.#track(d.receiver, done));
        touched.add(d.receiver);
      }
    }
    // A held alert is done once its record is durable: a restart reads it back.
    if (held) all.push(this.#opts.silences!.persisted());
    return {
      done: all.length === 0 ? Promise.resolve() : Promise.all(all).then(() => {}),
      full: set.onFull === "pause" ? [...touched].filter((r) => this.unfinished(r) >= set.maxQueued) : [],
    };
  }

  /** `submit` and wait: resolves when each alert is delivered or dead-lettered everywhere it goes. */
  deliver(alerts: readonly SensorAlert[]): Promise<void> {
    return this.submit(alerts).done;
  }

  /**
   * Sends `notifications` as one delivery with id `deliveryId` straight to one notifier, bypassing
   * routes and groups (DLQ replay); true once delivered, false when dead-lettered again.
   */
  deliverTo(receiver: string, notifications: Notification[], deliveryId: string): Promise<boolean> {
    const set = this.#opts.notifiers();
    const inst = set.instances.get(receiver);
    if (inst === undefined) throw new TypeError(`Unknown notifier "${receiver}"`);
    const deadline = Date.now() + set.policy.giveUpAfterMs;
    let delivered = false;
    const sent = this.#deliveries.send(set, inst, notifications, deliveryId, deadline).then((ok) => {
      delivered = ok;
    });
    return this.#track(receiver, sent).then(() => delivered);
  }

  /** Resolves once each of `receivers` is down to half its `max_queued` (or the stage stops). */
  whenRoom(receivers: readonly string[]): Promise<void> {
    if (this.#closed || this.#roomy(receivers)) return Promise.resolve();
    return new Promise((resolve) => this.#roomWaiters.push({ receivers: [...receivers], resolve }));
  }

  /**
   * Resolves once the tries in flight now have ended and their notifications are delivered,
   * dead-lettered or waiting for their next try (see `Deliveries.settled`).
   */
  settled(): Promise<void> {
    return this.#deliveries.settled();
  }

  /**
   * Aborts retries, waits and groups in progress: their alerts are neither delivered nor
   * dead-lettered. Resolves once the tries in flight have finished (within the stop grace).
   */
  close(): Promise<void> {
    this.#closed = true;
    const reason = new Error("The notifier stage is stopping");
    this.#grouper.close(reason);
    this.#storm?.close(reason);
    const inFlight = this.#deliveries.close();
    for (const w of this.#roomWaiters.splice(0)) w.resolve();
    return inFlight;
  }

  #track(receiver: string, done: Promise<unknown>): Promise<void> {
    this.#unfinished.set(receiver, this.unfinished(receiver) + 1);
    return done.then(() => {}).finally(() => {
      const left = this.unfinished(receiver) - 1;
      if (left === 0) this.#unfinished.delete(receiver);
      else this.#unfinished.set(receiver, left);
      if (this.#roomWaiters.length > 0) {
        const ready = this.#roomWaiters.filter((w) => this.#roomy(w.receivers));
        if (ready.length > 0) {
          this.#roomWaiters = this.#roomWaiters.filter((w) => !ready.includes(w));
          for (const w of ready) w.resolve();
        }
      }
    });
  }

  /** Below half of `max_queued`: resuming at the limit itself would pause again at the next batch. */
  #roomy(receivers: readonly string[]): boolean {
    const limit = this.#opts.notifiers().maxQueued / 2;
    return receivers.every((r) => this.unfinished(r) < limit);
  }
}

/** Stands in for a receiver a reload removed: it fails for good, so its notifications are dead-lettered. */
function missing(name: string) {
  return {
    name,
    plugin: "removed",
    notifier: {
      notify: () =>
        Promise.reject(
          new DeliveryError(`Notifier "${name}" was removed from the configuration`, {
            reason: "client",
            retryable: false,
          }),
        ),
    },
  };
}
