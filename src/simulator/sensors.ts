import type { SensorEventInput, SensorType } from "../contract/schemas.ts";

export interface VirtualSensor {
  sensor_id: string;
  sensor_type: SensorType;
  unit: string;
  base: number;
  spread: number;
  /** Where it is; LOCATION when not given. */
  location?: string;
}

/** The six sensors of the original design. */
export const DEFAULT_SENSORS: readonly VirtualSensor[] = [
  { sensor_id: "temp-001", sensor_type: "temperature", unit: "°C", base: 22, spread: 5 },
  { sensor_id: "temp-002", sensor_type: "temperature", unit: "°C", base: 20, spread: 3 },
  { sensor_id: "hum-001", sensor_type: "humidity", unit: "%", base: 50, spread: 15 },
  { sensor_id: "press-001", sensor_type: "pressure", unit: "hPa", base: 1013, spread: 20 },
  { sensor_id: "co2-001", sensor_type: "co2", unit: "ppm", base: 400, spread: 100 },
  { sensor_id: "light-001", sensor_type: "light", unit: "lux", base: 500, spread: 200 },
];

/** Out-of-range values an anomaly jumps to, chosen to cross the shipped rules' thresholds. */
const ANOMALY: Record<string, [number, number]> = {
  temperature: [-5, 45],
  humidity: [5, 95],
  pressure: [950, 1080],
  co2: [1200, 2500],
  light: [0, 5000],
};

export const LOCATION = "Building A, Floor 1";

/** mulberry32: a tiny seeded PRNG, so `--seed` reproduces a run exactly. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The default six plus `extra` generated sensors spread over the types (for load tests) and over 20
 * locations (Building A–E, Floors 1–4), so a fleet on the dashboard has groups and an overview.
 */
export function sensorFleet(extra = 0): VirtualSensor[] {
  const fleet = [...DEFAULT_SENSORS];
  for (let i = 0; i < extra; i++) {
    const template = DEFAULT_SENSORS[i % DEFAULT_SENSORS.length]!;
    fleet.push({
      ...template,
      sensor_id: `${template.sensor_id.split("-")[0]}-g${String(i + 1).padStart(5, "0")}`,
      location: `Building ${"ABCDE"[i % 5]}, Floor ${1 + Math.floor(i / 5) % 4}`,
    });
  }
  return fleet;
}

export interface GeneratorOptions {
  seed?: number;
  anomalyProbability?: number;
  sensors?: readonly VirtualSensor[];
  runId?: string;
}

/** Produces SensorEvents in the contract's shape, round-robin over the fleet. */
export class EventGenerator {
  readonly sensors: readonly VirtualSensor[];
  readonly #rand: () => number;
  readonly #anomaly: number;
  readonly #runId: string;
  #seq = 0;

  constructor(opts: GeneratorOptions = {}) {
    const seed = opts.seed ?? Date.now();
    this.sensors = opts.sensors ?? DEFAULT_SENSORS;
    this.#rand = prng(seed);
    this.#anomaly = opts.anomalyProbability ?? 0.05;
    this.#runId = opts.runId ?? seed.toString(36);
  }

  /** The next event; `now` is its timestamp (epoch ms). */
  next(now: number): SensorEventInput {
    const s = this.sensors[this.#seq % this.sensors.length]!;
    this.#seq++;
    const r = this.#rand;
    const range = ANOMALY[s.sensor_type];
    let value: number;
    if (range !== undefined && r() < this.#anomaly) {
      value = r() < 0.5 ? range[0] + r() * 3 : range[1] - r() * 3;
    } else {
      value = s.base + (r() * 2 - 1) * s.spread;
    }
    return {
      event_id: `${this.#runId}-${this.#seq}`,
      sensor_id: s.sensor_id,
      sensor_type: s.sensor_type,
      value: Math.round(value * 100) / 100,
      unit: s.unit,
      timestamp: new Date(now).toISOString(),
      location: s.location ?? LOCATION,
      metadata: { firmware_version: "1.2.3", battery_level: 60 + Math.floor(r() * 41) },
    };
  }

  get produced(): number {
    return this.#seq;
  }
}
