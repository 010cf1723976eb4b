/**
 * Sensor stats across the thread boundary, by columns: structured clone pays per object, so 10,000
 * sensors of 60 recent values each took 80-190 ms as objects and 6-15 ms (encoding included) as a few
 * typed arrays, which also move without a copy.
 *
 * @module
 */
import type { SensorStats } from "../stats/stats.ts";

export interface SensorColumns {
  ids: string[];
  types: string[];
  units: string[];
  locations: (string | null)[];
  /** `NUMBERS` values per sensor: count, sum, min, max, last_value, last_update. */
  numbers: Float64Array;
  /** Every sensor's recent values, oldest first, one after the other. */
  recent: Float64Array;
  /** How many of `recent` are each sensor's. */
  recentLengths: Uint32Array;
}

const NUMBERS = 6;

export function encodeSensors(stats: readonly SensorStats[]): SensorColumns {
  const recents = stats.map((s) => s.recent);
  const numbers = new Float64Array(stats.length * NUMBERS);
  const recent = new Float64Array(recents.reduce((n, r) => n + r.length, 0));
  const recentLengths = new Uint32Array(stats.length);
  let at = 0;
  for (const [i, s] of stats.entries()) {
    numbers.set([s.count, s.sum, s.min, s.max, s.last_value, s.last_update], i * NUMBERS);
    const r = recents[i]!;
    recent.set(r, at);
    recentLengths[i] = r.length;
    at += r.length;
  }
  return {
    ids: stats.map((s) => s.sensor_id),
    types: stats.map((s) => s.sensor_type),
    units: stats.map((s) => s.unit),
    locations: stats.map((s) => s.location),
    numbers,
    recent,
    recentLengths,
  };
}

/** The buffers `postMessage` can move instead of copying. */
export function sensorBuffers(c: SensorColumns): ArrayBuffer[] {
  return [
    c.numbers.buffer as ArrayBuffer,
    c.recent.buffer as ArrayBuffer,
    c.recentLengths.buffer as ArrayBuffer,
  ];
}

export function decodeSensors(c: SensorColumns): SensorStats[] {
  const out: SensorStats[] = [];
  let at = 0;
  for (const [i, sensor_id] of c.ids.entries()) {
    const n = c.numbers.subarray(i * NUMBERS, (i + 1) * NUMBERS);
    const len = c.recentLengths[i]!;
    out.push({
      sensor_id,
      sensor_type: c.types[i]!,
      unit: c.units[i]!,
      location: c.locations[i] ?? null,
      count: n[0]!,
      sum: n[1]!,
      min: n[2]!,
      max: n[3]!,
      last_value: n[4]!,
      last_update: n[5]!,
      recent: Array.from(c.recent.subarray(at, at + len)),
    });
    at += len;
  }
  return out;
}
