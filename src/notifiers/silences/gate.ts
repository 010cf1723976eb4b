/**
 * Where silences meet notifications: the Dispatcher asks `hold(alert)` of every alert before routing
 * it. A silenced alert is held (its newest state, per alert id) instead of notified; when the
 * silences change or one ends, the held alerts are looked at again, and one that is still firing and
 * no longer silenced is notified then. One that resolved meanwhile is dropped: its receivers never
 * heard it fire, so neither the firing nor the resolved notice is owed. The resolved notice of an
 * alert notified as firing before its silence began is notified: its receivers are owed its end.
 *
 * Held alerts live in this process's memory: a notifier stage restarted during a silence no longer
 * holds them, and such an alert is notified again by its next repeat (`repeat_interval`).
 *
 * @module
 */
import type { SensorAlert } from "../../contract/schemas.ts";
import type { Logger } from "../../log.ts";
import type { Silences } from "./store.ts";

/** Alerts notified as firing that the gate remembers (~10 MB of ids): alerts that never resolve. */
const MAX_NOTIFIED_FIRING = 100_000;

export class SilenceGate {
  readonly #silences: Silences;
  readonly #logger: Logger;
  readonly #held = new Map<string, SensorAlert>();
  /** Alerts this gate let through as firing and not yet as resolved. */
  readonly #notifiedFiring = new Set<string>();
  #release: ((alerts: SensorAlert[]) => void) | null = null;

  constructor(silences: Silences, logger: Logger) {
    this.#silences = silences;
    this.#logger = logger;
    silences.onChange(() => this.#recheck());
  }

  /** Where released alerts go (the Dispatcher's own `submit`). */
  attach(release: (alerts: SensorAlert[]) => void): void {
    this.#release = release;
  }

  /** True when `alert` is silenced: it is held, not notified. */
  hold(alert: SensorAlert): boolean {
    const firing = alert.state === "firing";
    const by = this.#silences.silencing(alert);
    if (by.length === 0) {
      // Notified now in its newest state: an older held state is no longer owed.
      this.#held.delete(alert.alert_id);
      this.#notified(alert.alert_id, firing);
      return false;
    }
    // Its receivers saw it fire before the silence began: they are owed its end, or a pager keeps
    // the incident open for good.
    if (!firing && this.#notifiedFiring.delete(alert.alert_id)) return false;
    this.#silences.suppressed++;
    if (alert.state === "firing") this.#held.set(alert.alert_id, alert);
    else this.#held.delete(alert.alert_id);
    this.#logger.debug("Notification silenced", {
      alert_id: alert.alert_id,
      rule: alert.rule_id,
      sensor_id: alert.sensor_id,
      silenced_by: by.join(","),
    });
    return true;
  }

  /** Alerts held now. */
  get held(): number {
    return this.#held.size;
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
    if (this.#held.size === 0 || this.#release === null) return;
    const due: SensorAlert[] = [];
    for (const [id, alert] of this.#held) {
      if (this.#silences.silencing(alert).length > 0) continue;
      this.#held.delete(id);
      due.push(alert);
    }
    if (due.length === 0) return;
    this.#logger.info("Silence ended: notifying the alerts it held that still fire", { alerts: due.length });
    this.#release(due);
  }
}
