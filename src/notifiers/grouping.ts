/**
 * Aggregation groups, as Alertmanager keeps them: one per receiver, route and group key, each with
 * its own timer. A new group waits `group_wait` so the alerts that arrive meanwhile go out together;
 * after a notification the group waits `group_interval` before the next one, whatever other groups
 * do; a group that has nothing new for a whole interval (and nothing to repeat) ends.
 *
 * @module
 */
import { sha256Hex } from "../hash.ts";
import type { Clock } from "./clock.ts";
import type { Notification } from "./plugin.ts";

/**
 * Firing alerts one group keeps for its repeats, at most; past it the oldest is dropped (and counted,
 * `sensor_notification_repeats_dropped_total`). A repeat re-sends them all in one notification: 1,000
 * alerts of 540 JSON bytes made a 0.7 MB webhook body (the Slack plugin shows 10 of them anyway).
 */
export const MAX_REPEATED_PER_GROUP = 1_000;

/**
 * Firing alerts kept for repeats over all groups, at most (oldest dropped first). Each keeps its whole
 * alert: 750 bytes of heap for an alert of 540 JSON bytes (measured over 10,000), so ~7.5 MB. It also
 * bounds the groups a flood of distinct, never-resolving alerts keeps alive (`group_by: [sensor_id]`).
 */
export const MAX_REPEATED = 10_000;

/** How one route groups (durations in ms); `key` names the group (receiver, route, group_by values). */
export interface GroupSpec {
  key: string;
  waitMs: number;
  intervalMs: number;
  /** Re-send the group's still-firing alerts when nothing was sent for this long; null: never. */
  repeatMs: number | null;
}

export interface GrouperOptions {
  clock: Clock;
  /**
   * Sends one notification of a group to `receiver`; resolves once it is delivered or dead-lettered,
   * rejects when the stage stops first.
   */
  flush(receiver: string, batch: Notification[], id: string): Promise<unknown>;
  /**
   * Whether a firing notification, once sent, is kept for its group's repeats: not when no resolved
   * notice will ever end it. Asked again before each repeat, so a reload applies. Default: all are.
   */
  repeatable?(n: Notification): boolean;
  /**
   * Whether a kept alert is muted now (silenced, or inhibited by a source firing now): a repeat leaves
   * it out, as Alertmanager mutes at every flush; a repeat whose alerts are all muted is not sent, and
   * the next is due `repeat_interval` after the last one sent. Default: none is.
   */
  muted?(n: Notification): boolean;
  /** A firing alert was dropped from a group's repeats (past `MAX_REPEATED_PER_GROUP` or `MAX_REPEATED`). */
  dropped?(receiver: string, n: Notification): void;
}

interface Waiter {
  resolve(): void;
  reject(err: unknown): void;
}

interface Group {
  receiver: string;
  spec: GroupSpec;
  /** New or changed since the last notification, by notification id (a redelivered one joins its twin). */
  pending: Map<string, { n: Notification; waiters: Waiter[] }>;
  /**
   * Alerts firing as last notified, by alert id, oldest first: what a repeat re-sends (kept only with a
   * repeat interval).
   */
  firing: Map<string, Notification>;
  /**
   * Alerts that ended (or moved to other groups) since the last notification: a firing notice of
   * theirs still pending is sent, not kept.
   */
  ended: Set<string>;
  timer: unknown;
  lastSentAt: number;
  repeats: number;
}

export class Grouper {
  readonly #opts: GrouperOptions;
  readonly #groups = new Map<string, Group>();
  /**
   * The groups that keep each alert for repeats, by alert id, oldest first: a resolved notice ends it
   * in all of them, whatever group (route, priority, labels) the notice itself goes to.
   */
  readonly #kept = new Map<string, Set<Group>>();
  /** Entries of every group's `firing`: what `MAX_REPEATED` bounds. */
  #keptCount = 0;
  /** The groups with a firing notice of each alert pending, by alert id. */
  readonly #pendingIn = new Map<string, Set<Group>>();
  #closed: { reason: unknown } | null = null;

  constructor(opts: GrouperOptions) {
    this.#opts = opts;
  }

  /** Groups alive now. */
  get size(): number {
    return this.#groups.size;
  }

  /** Adds a notification to its group; resolves once the group's notification holding it is delivered or dead-lettered. */
  add(receiver: string, spec: GroupSpec, n: Notification): Promise<void> {
    if (this.#closed !== null) return Promise.reject(this.#closed.reason);
    let g = this.#groups.get(spec.key);
    if (g === undefined) {
      g = {
        receiver,
        spec,
        pending: new Map(),
        firing: new Map(),
        ended: new Set(),
        timer: null,
        lastSentAt: 0,
        repeats: 0,
      };
      this.#groups.set(spec.key, g);
      this.#schedule(g, spec.waitMs);
    }
    // A reload's timings apply from the group's next flush on.
    g.spec = spec;
    if (n.alert.state === "firing") {
      // The newest notice of an alert wins: one that ended before it came does not end it.
      g.ended.delete(n.alert.alert_id);
      setOf(this.#pendingIn, n.alert.alert_id).add(g);
    }
    const group = g;
    return new Promise<void>((resolve, reject) => {
      const entry = group.pending.get(n.id) ?? { n, waiters: [] };
      entry.waiters.push({ resolve, reject });
      group.pending.set(n.id, entry);
    });
  }

  /**
   * The alert's episode ended (its resolved notice was read, wherever it is routed): no group repeats
   * it any more, and a firing notice of it still pending is sent but not kept.
   */
  resolved(alertId: string): void {
    this.#moved(alertId, null);
  }

  /**
   * The alert was acknowledged (the API published it with `acknowledged: true`): the groups that keep
   * it for repeats keep it acknowledged, so `muted` can leave it out of their repeats.
   */
  acknowledged(alertId: string): void {
    for (const g of this.#kept.get(alertId) ?? []) {
      const n = g.firing.get(alertId);
      // Set in place: the alert keeps its age among the group's kept ones.
      if (n !== undefined) g.firing.set(alertId, { ...n, alert: { ...n.alert, acknowledged: true } });
    }
  }

  /**
   * A newer firing notice of the alert goes to the groups `keys` (none: to no group): the other groups
   * that keep an older one (an escalation moved the alert to another route) stop repeating it.
   */
  moved(alertId: string, keys: ReadonlySet<string>): void {
    this.#moved(alertId, keys);
  }

  /** Ends every group: what they hold is neither sent nor dead-lettered (its offsets stay uncommitted). */
  close(reason: unknown): void {
    this.#closed = { reason };
    for (const g of this.#groups.values()) {
      this.#opts.clock.clearTimeout(g.timer);
      for (const { waiters } of g.pending.values()) for (const w of waiters) w.reject(reason);
    }
    this.#groups.clear();
    this.#kept.clear();
    this.#pendingIn.clear();
    this.#keptCount = 0;
  }

  #moved(alertId: string, keys: ReadonlySet<string> | null): void {
    for (const g of this.#pendingIn.get(alertId) ?? []) {
      if (keys === null || !keys.has(g.spec.key)) g.ended.add(alertId);
    }
    for (const g of [...this.#kept.get(alertId) ?? []]) {
      if (keys === null || !keys.has(g.spec.key)) this.#unkeep(g, alertId);
    }
  }

  #keep(g: Group, n: Notification): void {
    const id = n.alert.alert_id;
    // Re-inserted: the newest notice of an alert makes it the youngest, the last one a bound drops.
    if (!g.firing.delete(id)) this.#keptCount++;
    g.firing.set(id, n);
    const groups = this.#kept.get(id) ?? new Set();
    this.#kept.delete(id);
    this.#kept.set(id, groups.add(g));
  }

  #unkeep(g: Group, id: string): void {
    if (!g.firing.delete(id)) return;
    this.#keptCount--;
    const groups = this.#kept.get(id);
    groups?.delete(g);
    if (groups?.size === 0) this.#kept.delete(id);
  }

  /** Drops the oldest alerts past the bounds, counting each. */
  #bound(g: Group): void {
    for (const [id, n] of g.firing) {
      if (g.firing.size <= MAX_REPEATED_PER_GROUP) break;
      this.#unkeep(g, id);
      this.#opts.dropped?.(g.receiver, n);
    }
    for (const [id, groups] of this.#kept) {
      if (this.#keptCount <= MAX_REPEATED) break;
      for (const other of [...groups]) {
        const n = other.firing.get(id)!;
        this.#unkeep(other, id);
        this.#opts.dropped?.(other.receiver, n);
      }
    }
  }

  #schedule(g: Group, ms: number): void {
    g.timer = this.#opts.clock.setTimeout(() => this.#tick(g), ms);
  }

  #tick(g: Group): void {
    g.timer = null;
    const now = this.#opts.clock.now();
    const repeatable = this.#opts.repeatable ?? (() => true);
    if (g.pending.size > 0) {
      const entries = [...g.pending.values()];
      g.pending = new Map();
      const batch = entries.map((e) => e.n);
      for (const n of batch) {
        const id = n.alert.alert_id;
        const pendingIn = this.#pendingIn.get(id);
        pendingIn?.delete(g);
        if (pendingIn?.size === 0) this.#pendingIn.delete(id);
        const keep = n.alert.state === "firing" && g.spec.repeatMs !== null && !g.ended.has(id) &&
          repeatable(n);
        if (keep) this.#keep(g, n);
        else this.#unkeep(g, id);
      }
      g.ended.clear();
      this.#bound(g);
      g.lastSentAt = now;
      this.#send(g, batch, "").then(
        () => entries.forEach((e) => e.waiters.forEach((w) => w.resolve())),
        (err) => entries.forEach((e) => e.waiters.forEach((w) => w.reject(err))),
      );
    } else {
      // A reload may have turned repeats off, or made a rule's alerts unending (`notify_resolved`).
      for (const [id, n] of g.firing) if (g.spec.repeatMs === null || !repeatable(n)) this.#unkeep(g, id);
      if (g.firing.size === 0) {
        this.#groups.delete(g.spec.key);
        return;
      }
      const muted = this.#opts.muted ?? (() => false);
      const batch = now - g.lastSentAt >= g.spec.repeatMs!
        ? [...g.firing.values()].filter((n) => !muted(n))
        : [];
      if (batch.length > 0) {
        g.lastSentAt = now;
        // A repeat holds no offsets: when the stage stops first, it is simply not sent.
        this.#send(g, batch, `.repeat-${++g.repeats}`).catch(() => {});
      }
    }
    this.#schedule(g, g.spec.intervalMs);
  }

  async #send(g: Group, batch: Notification[], suffix: string): Promise<void> {
    await this.#opts.flush(g.receiver, batch, `${batchId(batch)}${suffix}`);
  }
}

function setOf<K, V>(map: Map<K, Set<V>>, key: K): Set<V> {
  let set = map.get(key);
  if (set === undefined) map.set(key, set = new Set());
  return set;
}

/** The delivery id of a group: the same for the same notifications, in any order, so a redelivery keeps it. */
export function batchId(batch: readonly Notification[]): string {
  if (batch.length === 1) return batch[0]!.id;
  const ids = batch.map((n) => n.id).sort().join("\n");
  return `group.${sha256Hex(ids).slice(0, 24)}`;
}
