/**
 * Where silences meet notifications: the Dispatcher asks `hold(alert, partition)` of every alert
 * before routing it. A silenced alert is held (its newest state, per alert id) instead of notified;
 * when the silences change or one ends, the held alerts are looked at again, and one that is still
 * firing and no longer silenced is notified then. One that resolved meanwhile is dropped: its
 * receivers never heard it fire, so neither the firing nor the resolved notice is owed. The resolved
 * notice of an alert notified as firing before its silence began is notified: its receivers are owed
 * its end.
 *
 * Held alerts are durable (`HeldAlerts`): a notifier restarted during a silence reads them back, and
 * the instance owning an alert's partition releases it.
 *
 * @module
 */
import type { SensorAlert } from "../../contract/schemas.ts";
import type { Logger } from "../../log.ts";
import { HeldAlerts, LOCAL_PARTITION } from "./held.ts";
import type { Silences } from "./store.ts";

/** Alerts notified as firing that the gate remembers (~10 MB of ids): alerts that never resolve. */
const MAX_NOTIFIED_FIRING = 100_000;

export class SilenceGate {
  readonly #silences: Silences;
  readonly #logger: Logger;
  readonly #held: HeldAlerts;
  /**
   * Alerts this gate let through as firing and not yet as resolved. In memory: the instance that
   * owns the alert's partition notifies it, so it is the one that knows; a notifier restarted (or
   * handed the partition) since has forgotten them, and their resolved notice is silenced as before.
   */
  readonly #notifiedFiring = new Set<string>();
  #release: ((alerts: SensorAlert[]) => Promise<void>) | null = null;
  /** Nothing is released before the held alerts are read back (and again after each assignment). */
  #ready = false;
  #assignments = 0;

  /** Without `held`, held alerts live in this process's memory only. */
  constructor(silences: Silences, logger: Logger, held?: HeldAlerts) {
    this.#silences = silences;
    this.#logger = logger;
    this.#held = held ?? new HeldAlerts(null, logger);
    silences.onChange(() => this.#recheck());
    silences.heldCount = () => this.#held.size;
    if (held === undefined) this.#ready = true;
  }

  /** Where released alerts go (the Dispatcher's own `submit`); resolves once they are notified. */
  attach(release: (alerts: SensorAlert[]) => Promise<void>): void {
    this.#release = release;
  }

  /**
   * Reads the held alerts back. `owned: "all"` (one process, no topic) releases what is owed at
   * once; otherwise releasing waits for `assign`.
   */
  async start(owned: "all" | "assigned"): Promise<void> {
    await this.#held.start();
    if (owned === "all") {
      this.#ready = true;
      this.#recheck();
    }
  }

  /** The alerts-topic partitions this instance owns now (the notifier group's assignment). */
  assign(partitions: readonly number[]): void {
    const n = ++this.#assignments;
    this.#ready = false;
    this.#held.assign(partitions).then(
      () => {
        if (n !== this.#assignments) return;
        this.#ready = true;
        this.#recheck();
      },
      (error) => {
        // Released at the next change of the silences, or the next assignment.
        if (n === this.#assignments) this.#ready = true;
        this.#logger.warn("Reading the held alerts after an assignment failed", { error });
      },
    );
  }

  /** True when `alert` is silenced: it is held, not notified. */
  hold(alert: SensorAlert, partition = LOCAL_PARTITION): boolean {
    const firing = alert.state === "firing";
    const by = this.#silences.silencing(alert);
    if (by.length === 0) {
      // Notified now in its newest state: an older held state is no longer owed.
      this.#held.drop(alert.alert_id);
      this.#notified(alert.alert_id, firing);
      return false;
    }
    // Its receivers saw it fire before the silence began: they are owed its end, or a pager keeps
    // the incident open for good. A firing repeat held meanwhile is dropped: released after this
    // resolved notice, it would open the incident again.
    if (!firing && this.#notifiedFiring.delete(alert.alert_id)) {
      this.#held.drop(alert.alert_id);
      return false;
    }
    this.#silences.suppressed++;
    if (alert.state === "firing") this.#held.keep(alert, partition);
    else this.#held.drop(alert.alert_id);
    this.#logger.debug("Notification silenced", {
      alert_id: alert.alert_id,
      rule: alert.rule_id,
      sensor_id: alert.sensor_id,
      silenced_by: by.join(","),
    });
    return true;
  }

  /** Resolves once what `hold` wrote is durable (what lets the caller commit the alerts' offsets). */
  persisted(): Promise<void> {
    return this.#held.persisted();
  }

  /** Alerts held now (by any instance). */
  get held(): number {
    return this.#held.size;
  }

  close(): Promise<void> {
    this.#ready = false;
    return this.#held.close();
  }

  /** Remembers the alerts last notified as firing (at most `MAX_NOTIFIED_FIRING`, oldest forgotten). */
  #notified(id: string, firing: boolean): void {
    this.#notifiedFiring.delete(id);
    if (!firing) return;
    this.#notifiedFiring.add(id);
    if (this.#notifiedFiring.size > MAX_NOTIFIED_FIRING) {
      this.#notifiedFiring.delete(this.#notifiedFiring.values().next().value!);
    }
  }

  #recheck(): void {
    if (!this.#ready || this.#held.size === 0 || this.#release === null) return;
    const { alerts, forget } = this.#held.take((a) => this.#silences.silencing(a).length === 0);
    if (alerts.length === 0) return;
    this.#silences.released += alerts.length;
    this.#logger.info("Silence ended: notifying the alerts it held that still fire", {
      alerts: alerts.length,
    });
    this.#release(alerts).then(forget, (error) =>
      // Still on record: the next start (or owner) releases them again.
      this.#logger.debug("Released notifications given up", { error }));
  }
}
