import type { SensorEvent } from "../contract/schemas.ts";

/** What the service knows about one sensor. */
export interface SensorStats {
  sensor_id: string;
  sensor_type: string;
  unit: string;
  location: string | null;
  count: number;
  sum: number;
  min: number;
  max: number;
  last_value: number;
  /** Event time of the newest event, epoch ms. */
  last_update: number;
  /** The newest values, oldest first, for sparklines. */
  recent: number[];
}

/** Per-sensor running statistics; updated once per accepted event. */
export class StatsStore {
  readonly #sensors = new Map<string, SensorStats>();
  readonly #recentSize: number;

  constructor(recentSize = 60) {
    this.#recentSize = recentSize;
  }

  update(event: SensorEvent, time: number): SensorStats {
    let s = this.#sensors.get(event.sensor_id);
    if (s === undefined) {
      s = {
        sensor_id: event.sensor_id,
        sensor_type: event.sensor_type,
        unit: event.unit,
        location: event.location ?? null,
        count: 0,
        sum: 0,
        min: Infinity,
        max: -Infinity,
        last_value: event.value,
        last_update: time,
        recent: [],
      };
      this.#sensors.set(event.sensor_id, s);
    }
    s.count++;
    s.sum += event.value;
    if (event.value < s.min) s.min = event.value;
    if (event.value > s.max) s.max = event.value;
    // Out-of-order events update the aggregates but not "last": last means newest by event time.
    if (time >= s.last_update) {
      s.last_value = event.value;
      s.last_update = time;
      s.unit = event.unit;
      s.location = event.location ?? s.location;
    }
    s.recent.push(event.value);
    if (s.recent.length > this.#recentSize) s.recent.shift();
    return s;
  }

  get(sensorId: string): SensorStats | undefined {
    return this.#sensors.get(sensorId);
  }

  all(): SensorStats[] {
    return [...this.#sensors.values()].sort((a, b) => a.sensor_id.localeCompare(b.sensor_id));
  }

  get size(): number {
    return this.#sensors.size;
  }
}

export function average(s: SensorStats): number {
  return s.count === 0 ? NaN : s.sum / s.count;
}

/** The shutdown summary, one line per sensor, like the original consumer printed. */
export function formatStatsTable(stats: SensorStats[]): string {
  if (stats.length === 0) return "No sensor events processed";
  const rows = stats.map((s) => [
    s.sensor_id,
    s.sensor_type,
    String(s.count),
    `${average(s).toFixed(2)} ${s.unit}`.trim(),
    s.min.toFixed(2),
    s.max.toFixed(2),
    `${s.last_value.toFixed(2)}`,
  ]);
  const header = ["sensor", "type", "count", "avg", "min", "max", "last"];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd();
  return [line(header), ...rows.map(line)].join("\n");
}
