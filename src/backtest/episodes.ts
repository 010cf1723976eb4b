/**
 * Alert episodes rebuilt from the alerts a backtest raised: a firing alert opens one, repeats count
 * on it, the resolved notice closes it. The key is the engine's: rule id and group (the sensor, or a
 * window rule's `group_by` values).
 *
 * @module
 */
import type { Priority, SensorAlert } from "../contract/schemas.ts";

export interface BacktestEpisode {
  rule_id: string;
  group: string;
  sensor_id: string;
  sensor_type: string;
  priority: Priority;
  alert_id: string;
  /** When it fired (event time, epoch ms). */
  start: number;
  /** When it resolved; null when it was still firing at the end of the input. */
  end: number | null;
  /** When its condition first held (the pending phase's start); null when unknown. */
  first_breach: number | null;
  repeats: number;
  /** The firing alert's value and threshold. */
  value: number;
  threshold: number | null;
  resolved_reason: string | null;
}

export class EpisodeLog {
  /** In the order they fired. */
  readonly episodes: BacktestEpisode[] = [];
  readonly #open = new Map<string, BacktestEpisode>();
  /** The end of the input, for the time an open episode spent firing. */
  endOfInput = -Infinity;

  /** Feeds one alert; `firstBreach` is the pending phase's start of a first firing alert. */
  add(alert: SensorAlert, firstBreach: number | null = null): void {
    if (alert.ack_update) return;
    const group = alert.group ?? alert.sensor_id;
    const key = `${alert.rule_id}\u0000${group}`;
    const at = Date.parse(alert.timestamp);
    const open = this.#open.get(key);
    if (alert.state === "resolved") {
      if (open === undefined) return;
      open.end = at;
      open.resolved_reason = alert.resolved_reason ?? null;
      this.#open.delete(key);
      return;
    }
    if (open !== undefined && open.alert_id === alert.alert_id) {
      open.repeats++;
      return;
    }
    const fired = alert.fired_at ? Date.parse(alert.fired_at) : at;
    const ep: BacktestEpisode = {
      rule_id: alert.rule_id,
      group,
      sensor_id: alert.sensor_id,
      sensor_type: alert.sensor_type,
      priority: alert.priority,
      alert_id: alert.alert_id,
      start: fired,
      end: null,
      first_breach: firstBreach,
      repeats: alert.repeat ?? 0,
      value: alert.value,
      threshold: alert.threshold,
      resolved_reason: null,
    };
    this.episodes.push(ep);
    this.#open.set(key, ep);
  }

  /** The end of the input: episodes still open stay open (end null), firing until `at`. */
  close(at: number): void {
    this.endOfInput = at;
  }

  /** Milliseconds the episode spent firing: to its end, or to the end of the input. */
  firingMs(ep: BacktestEpisode): number {
    const end = ep.end ?? Math.max(ep.start, this.endOfInput);
    return Math.max(0, end - ep.start);
  }
}
