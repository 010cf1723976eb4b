/**
 * Each sensor's values over event time, for the page's charts, in bounded memory: past
 * `maxPoints` a sensor's points are thinned to every other one and the stride doubles, so a million
 * events of one sensor keep between `maxPoints / 2` and `maxPoints` of them, evenly spread.
 *
 * @module
 */
import type { SensorEvent } from "../contract/schemas.ts";

export interface Series {
  sensor_id: string;
  sensor_type: string;
  unit: string;
  /** [event time ms, value], in arrival order. */
  points: [number, number][];
}

interface Store extends Series {
  stride: number;
  skipped: number;
}

export class SeriesStore {
  readonly #sensors = new Map<string, Store>();
  readonly #maxPoints: number;
  readonly #maxSensors: number;
  /** Sensors left out once `maxSensors` were kept. */
  dropped = 0;

  constructor({ maxPoints = 2048, maxSensors = 2000 } = {}) {
    this.#maxPoints = maxPoints;
    this.#maxSensors = maxSensors;
  }

  add(event: SensorEvent, time: number): void {
    let s = this.#sensors.get(event.sensor_id);
    if (s === undefined) {
      if (this.#sensors.size >= this.#maxSensors) {
        this.dropped++;
        return;
      }
      s = {
        sensor_id: event.sensor_id,
        sensor_type: event.sensor_type,
        unit: event.unit,
        points: [],
        stride: 1,
        skipped: 0,
      };
      this.#sensors.set(event.sensor_id, s);
    }
    if (++s.skipped < s.stride) return;
    s.skipped = 0;
    s.points.push([time, event.value]);
    if (s.points.length >= this.#maxPoints) {
      s.points = s.points.filter((_, i) => i % 2 === 0);
      s.stride *= 2;
    }
  }

  get(sensorId: string): Series | undefined {
    const s = this.#sensors.get(sensorId);
    return s === undefined
      ? undefined
      : { sensor_id: s.sensor_id, sensor_type: s.sensor_type, unit: s.unit, points: s.points };
  }
}
