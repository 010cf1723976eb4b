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
  /** Alerts firing as last notified, by alert id: what a repeat re-sends (kept only with a repeat interval). */
  firing: Map<string, Notification>;
  timer: unknown;
  lastSentAt: number;
  repeats: number;
}

export class Grouper {
  readonly #opts: GrouperOptions;
  readonly #groups = new Map<string, Group>();
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
      g = { receiver, spec, pending: new Map(), firing: new Map(), timer: null, lastSentAt: 0, repeats: 0 };
      this.#groups.set(spec.key, g);
      this.#schedule(g, spec.waitMs);
    }
    // A reload's timings apply from the group's next flush on.
    g.spec = spec;
    const group = g;
    return new Promise<void>((resolve, reject) => {
      const entry = group.pending.get(n.id) ?? { n, waiters: [] };
      entry.waiters.push({ resolve, reject });
      group.pending.set(n.id, entry);
    });
  }

  /** Ends every group: what they hold is neither sent nor dead-lettered (its offsets stay uncommitted). */
  close(reason: unknown): void {
    this.#closed = { reason };
    for (const g of this.#groups.values()) {
      this.#opts.clock.clearTimeout(g.timer);
      for (const { waiters } of g.pending.values()) for (const w of waiters) w.reject(reason);
    }
    this.#groups.clear();
  }

  #schedule(g: Group, ms: number): void {
    g.timer = this.#opts.clock.setTimeout(() => this.#tick(g), ms);
  }

  #tick(g: Group): void {
    g.timer = null;
    const now = this.#opts.clock.now();
    if (g.pending.size > 0) {
      const entries = [...g.pending.values()];
      g.pending = new Map();
      const batch = entries.map((e) => e.n);
      if (g.spec.repeatMs !== null) {
        for (const n of batch) {
          if (n.alert.state === "resolved") g.firing.delete(n.alert.alert_id);
          else g.firing.set(n.alert.alert_id, n);
        }
      }
      g.lastSentAt = now;
      this.#send(g, batch, "").then(
        () => entries.forEach((e) => e.waiters.forEach((w) => w.resolve())),
        (err) => entries.forEach((e) => e.waiters.forEach((w) => w.reject(err))),
      );
    } else if (g.spec.repeatMs !== null && g.firing.size > 0 && now - g.lastSentAt >= g.spec.repeatMs) {
      g.lastSentAt = now;
      // A repeat holds no offsets: when the stage stops first, it is simply not sent.
      this.#send(g, [...g.firing.values()], `.repeat-${++g.repeats}`).catch(() => {});
    } else if (g.spec.repeatMs === null || g.firing.size === 0) {
      this.#groups.delete(g.spec.key);
      return;
    }
    this.#schedule(g, g.spec.intervalMs);
  }

  async #send(g: Group, batch: Notification[], suffix: string): Promise<void> {
    await this.#opts.flush(g.receiver, batch, `${batchId(batch)}${suffix}`);
  }
}

/** The delivery id of a group: the same for the same notifications, in any order, so a redelivery keeps it. */
export function batchId(batch: readonly Notification[]): string {
  if (batch.length === 1) return batch[0]!.id;
  const ids = batch.map((n) => n.id).sort().join("\n");
  return `group.${sha256Hex(ids).slice(0, 24)}`;
}
