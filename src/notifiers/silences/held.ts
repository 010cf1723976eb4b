/**
 * The alerts silences hold, durable: one record per held alert (the newest firing state, and the
 * alerts-topic partition it came from), written when it is held and forgotten (a tombstone) once it
 * is notified or resolves. A restarted notifier reads them back, so a silence that ends later still
 * releases them.
 *
 * Each held alert belongs to the instance that owns the alerts-topic partition it came from: only
 * that instance writes its record and releases it. Every instance reads every record, so the one a
 * rebalance hands the partition to already knows what the last owner held; it releases nothing of a
 * new partition before it has read the records written up to its assignment.
 *
 * @module
 */
import { z } from "zod";
import { SensorAlert } from "../../contract/schemas.ts";
import type { Logger } from "../../log.ts";
import type { SilenceLog } from "./store.ts";

/** Held alerts' keys on the silences topic, apart from the silences' own (UUIDs). */
export const HELD_KEY_PREFIX = "held/";

/** The partition of an alert that came from no topic (embedded and replay modes). */
export const LOCAL_PARTITION = -1;

export const HeldRecord = z.looseObject({
  /** `held/` and the alert id: the record's key. */
  id: z.string().startsWith(HELD_KEY_PREFIX),
  partition: z.number().int().min(LOCAL_PARTITION),
  /** The process that wrote it: its own records coming back from the topic are not news to it. */
  writer: z.string(),
  alert: SensorAlert,
});
export type HeldRecord = z.infer<typeof HeldRecord>;

export type HeldLog = SilenceLog<HeldRecord>;

interface Entry {
  partition: number;
  alert: SensorAlert;
}

/** A held alert as `owned` lists it. */
export interface HeldEntry {
  readonly id: string;
  readonly alert: SensorAlert;
  readonly partition: number;
  /** The record as held then: taken only while it is still the one held. */
  readonly entry: object;
}

export class HeldAlerts {
  readonly #log: HeldLog | null;
  readonly #logger: Logger;
  readonly #writer = crypto.randomUUID();
  readonly #entries = new Map<string, Entry>();
  /**
   * Per alert, tombstones this process wrote that the topic has not brought back yet: its own
   * tombstone must not forget the alert it held again meanwhile. (Its own held records are known
   * by `writer`.) Kept only for a log that comes back, the topic.
   */
  readonly #echoes = new Map<string, number>();
  readonly #pending = new Set<Promise<void>>();
  /** Alerts-topic partitions owned here; null: all of them (one process, no topic). */
  #owned: Set<number> | null = null;

  /** Without a log, held alerts live in this process's memory only (tests of the gate). */
  constructor(log: HeldLog | null, logger: Logger) {
    this.#log = log;
    this.#logger = logger;
  }

  /** Reads the held alerts back; resolves once what was written before the call is applied. */
  start(): Promise<void> {
    return this.#log?.start((key, value) => this.#apply(key, value)) ?? Promise.resolve();
  }

  /** Alerts held now, here or by another instance. */
  get size(): number {
    return this.#entries.size;
  }

  /**
   * The partitions this instance owns from now on; resolves once it has read every record written
   * before, so what the previous owner held or forgot is known.
   */
  async assign(partitions: readonly number[]): Promise<void> {
    this.#owned = new Set(partitions);
    await this.#log?.caughtUp?.();
  }

  /** Holds `alert` (its newest firing state), written through the log. */
  keep(alert: SensorAlert, partition: number): void {
    this.#entries.set(alert.alert_id, { partition, alert });
    this.#write(alert.alert_id, partition, { partition, alert });
  }

  /** Forgets `alert` when it was held (it resolved, or is notified in a newer state). */
  drop(alertId: string): void {
    const e = this.#entries.get(alertId);
    if (e === undefined) return;
    this.#entries.delete(alertId);
    this.#write(alertId, e.partition, null);
  }

  /**
   * Takes out the held alerts of owned partitions that `due` says are owed now; `forget` writes
   * their tombstones once they are notified (a crash in between notifies them again, at least once).
   */
  take(due: (alert: SensorAlert) => boolean): { alerts: SensorAlert[]; forget: () => void } {
    const taken: [string, Entry][] = [];
    for (const [id, e] of this.#entries) {
      if (this.#owned !== null && !this.#owned.has(e.partition)) continue;
      if (!due(e.alert)) continue;
      this.#entries.delete(id);
      taken.push([id, e]);
    }
    return {
      alerts: taken.map(([, e]) => e.alert),
      forget: () => {
        // Held again meanwhile: that newer record stands.
        for (const [id, e] of taken) if (!this.#entries.has(id)) this.#write(id, e.partition, null);
      },
    };
  }

  /** The held alerts of owned partitions now, to be tested bit by bit and taken by `takeSame`. */
  owned(): HeldEntry[] {
    const out: HeldEntry[] = [];
    for (const [id, e] of this.#entries) {
      if (this.#owned === null || this.#owned.has(e.partition)) {
        out.push({ id, entry: e, alert: e.alert, partition: e.partition });
      }
    }
    return out;
  }

  /**
   * Takes out those of `due` still held as they were when `owned` listed them (one held again since, or
   * dropped, was decided by `keep` or `drop` meanwhile); `forget` as in `take`.
   */
  takeSame(due: readonly HeldEntry[]): { alerts: SensorAlert[]; forget: () => void } {
    const taken = due.filter((d) => this.#entries.get(d.id) === d.entry);
    for (const d of taken) this.#entries.delete(d.id);
    return {
      alerts: taken.map((d) => d.alert),
      forget: () => {
        for (const d of taken) if (!this.#entries.has(d.id)) this.#write(d.id, d.partition, null);
      },
    };
  }

  /** Resolves once every record written so far is durable. */
  persisted(): Promise<void> {
    return this.#pending.size === 0 ? Promise.resolve() : Promise.all(this.#pending).then(() => {});
  }

  async close(): Promise<void> {
    await this.#log?.close();
  }

  #write(alertId: string, partition: number, entry: Entry | null): void {
    if (this.#log === null) return;
    if (entry === null && this.#log.caughtUp !== undefined) {
      this.#echoes.set(alertId, (this.#echoes.get(alertId) ?? 0) + 1);
    }
    const key = HELD_KEY_PREFIX + alertId;
    const record: HeldRecord | null = entry === null ? null : { id: key, writer: this.#writer, ...entry };
    const written = this.#log.write(key, record);
    this.#pending.add(written);
    written.then(
      () => this.#pending.delete(written),
      (error) => {
        this.#pending.delete(written);
        this.#logger.warn("Writing a held alert failed", { alert_id: alertId, partition, error });
      },
    );
  }

  #apply(key: string, value: unknown): void {
    if (!key.startsWith(HELD_KEY_PREFIX)) return;
    const alertId = key.slice(HELD_KEY_PREFIX.length);
    if (value === null) {
      const echoes = this.#echoes.get(alertId) ?? 0;
      if (echoes === 0) this.#entries.delete(alertId);
      else if (echoes === 1) this.#echoes.delete(alertId);
      else this.#echoes.set(alertId, echoes - 1);
      return;
    }
    const parsed = HeldRecord.safeParse(value);
    if (!parsed.success || parsed.data.alert.alert_id !== alertId) {
      this.#logger.warn("Skipping a held alert record that is not valid", { key });
      return;
    }
    if (parsed.data.writer === this.#writer) return;
    this.#entries.set(alertId, { partition: parsed.data.partition, alert: parsed.data.alert });
  }
}
