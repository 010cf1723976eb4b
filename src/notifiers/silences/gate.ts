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
import { HeldAlerts, type HeldEntry, LOCAL_PARTITION } from "./held.ts";
import type { Silences } from "./store.ts";

/** Alerts notified as firing that the gate remembers (~10 MB of ids): alerts that never resolve. */
const MAX_NOTIFIED_FIRING = 100_000;

/**
 * A recheck of the held alerts gives the event loop a turn after this many matcher tests (or
 * `CHUNK_ALERTS` alerts): one turn of it over every held alert against every silence took 1.2 s
 * with 200 held alerts and 100 silences of 32 matchers, and the whole 2,000 × 1,000 was over 300 s.
 * 5,000 tests of regexes like `.*(a|f|e|t|y).*` are ~12 ms (scripts/bench/silences_cost.ts).
 */
const CHUNK_TESTS = 5000;
/** How long `close` waits for releases and their tombstones: a write to a broker that is up takes ms. */
const CLOSE_GRACE_MS = 3000;
const CHUNK_ALERTS = 1000;

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
  /** The recheck under way; `#again` when the silences changed since it began. */
  #rechecking: Promise<void> | null = null;
  #again = false;
  /** Releases handed to the dispatcher and not yet delivered (or given up) and forgotten. */
  readonly #releasing = new Set<Promise<void>>();

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

  /** True when a silence in force matches `alert` now (nothing is held: a group's repeat asks). */
  silenced(alert: SensorAlert): boolean {
    return this.#silences.silencing(alert).length > 0;
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

  /** Resolves once the silences' changes so far are applied and the held alerts looked at again. */
  async settled(): Promise<void> {
    await this.#silences.settled();
    // Each round is a recheck begun for a change that came during the one before: bounded by them.
    for (let round = 0; round < 1000 && this.#rechecking !== null; round++) await this.#rechecking;
  }

  /** Alerts held now (by any instance). */
  get held(): number {
    return this.#held.size;
  }

  /**
   * Waits for the releases in flight (the dispatcher is closed first: each is delivered or given
   * up) and the records they forget, then closes the log. A release delivered whose tombstone was
   * not written is released again by the next start: a graceful restart would notify it twice.
   */
  async close(): Promise<void> {
    this.#ready = false;
    // Bounded: with the broker gone a write (or a release's dead-letter record) retries until the
    // output is closed, which comes after this. What did not land is released again, at least once.
    const written = Promise.allSettled([...this.#releasing]).then(() => this.#held.persisted());
    let timer: ReturnType<typeof setTimeout> | undefined;
    const grace = new Promise<void>((r) => timer = setTimeout(r, CLOSE_GRACE_MS));
    await Promise.race([written.catch(() => {}), grace]);
    clearTimeout(timer);
    await this.#held.close();
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

  /**
   * Looks at the held alerts again: one recheck at a time (a change meanwhile runs one more after
   * it), in chunks between which the event loop runs, each chunk's alerts that are owed released at
   * once. The first chunk runs at once: a few held alerts are released in the turn of the change.
   */
  #recheck(): void {
    if (this.#rechecking !== null) {
      this.#again = true;
      return;
    }
    this.#again = false;
    this.#rechecking = this.#recheckOnce()
      .catch((error) => this.#logger.warn("Looking at the held alerts again failed", { error }))
      .finally(() => {
        this.#rechecking = null;
        // The silences changed while it ran: what it tested early may be owed now.
        if (this.#again) this.#recheck();
      });
  }

  async #recheckOnce(): Promise<void> {
    if (!this.#ready || this.#held.size === 0 || this.#release === null) return;
    const held = this.#held.owned();
    let released = 0;
    let due: HeldEntry[] = [];
    let tests = this.#silences.matcherTests;
    let alerts = 0;
    for (const h of held) {
      if (this.#silences.silencing(h.alert).length === 0) due.push(h);
      if (++alerts < CHUNK_ALERTS && this.#silences.matcherTests - tests < CHUNK_TESTS) continue;
      released += this.#releaseDue(due);
      due = [];
      await new Promise((resolve) => setTimeout(resolve, 0));
      // Assigned elsewhere, or closed, meanwhile: the next owner (or start) looks again.
      if (!this.#ready) return;
      tests = this.#silences.matcherTests;
      alerts = 0;
    }
    released += this.#releaseDue(due);
    if (released > 0) {
      this.#logger.info("Silence ended: notifying the alerts it held that still fire", { alerts: released });
    }
  }

  /** Releases those of `due` still held as they were; returns how many. */
  #releaseDue(due: HeldEntry[]): number {
    if (due.length === 0 || this.#release === null) return 0;
    const { alerts, forget } = this.#held.takeSame(due);
    if (alerts.length === 0) return 0;
    this.#silences.released += alerts.length;
    const releasing = this.#release(alerts).then(forget, (error) =>
      // Still on record: the next start (or owner) releases them again.
      this.#logger.debug("Released notifications given up", { error }));
    this.#releasing.add(releasing);
    releasing.finally(() => this.#releasing.delete(releasing));
    return alerts.length;
  }
}
