/**
 * One stream that has every kind of awkward timestamp, shared by the unit test (the Pipeline) and the
 * integration test (the service on the real broker), so both prove the same documented handling.
 */
import type { SensorEventInput } from "../../src/contract/schemas.ts";

/** A one-minute tumbling window with 30 s of allowed lateness, published so a test can read it. */
export const WINDOW_RULES = `rules:
  - id: co2-minute
    sensor_type: co2
    window: { type: tumbling, size: 1m }
    allowed_lateness: 30s
    threshold: { max: 100000 }
    publish: true
    priority: low
`;

export interface Step {
  /** Seconds after the scenario's minute, or null for the far-future event. */
  at: number | null;
  value: number;
  what: string;
}

export const STEPS: Step[] = [
  { at: 10, value: 100, what: "in order" },
  { at: 50, value: 200, what: "in order" },
  { at: 20, value: 300, what: "out of order, same window: counts, is not the sensor's last value" },
  { at: null, value: 999, what: "an hour in the future: dead-lettered, moves no clock" },
  { at: 70, value: 400, what: "next window" },
  { at: 40, value: 500, what: "late, within allowed_lateness: still in its window" },
  { at: 100, value: 600, what: "closes the first window (watermark passes its end + 30 s)" },
  { at: 30, value: 700, what: "late beyond allowed_lateness: in stats, not in the window" },
];

/** The first window once closed: every event at < 60 s but the one that came too late. */
export const FIRST_WINDOW = { count: 4, min: 100, max: 500, avg: (100 + 200 + 300 + 500) / 4 };
/** The sensor's stats: every accepted event counts; "last" is the newest by event time. */
export const STATS = { count: 7, min: 100, max: 700, last_value: 600 };

/** The scenario's events, an hour in the past (whole minute) except the future one. */
export function scenario(prefix: string, wallNow = Date.now()): { t0: number; events: SensorEventInput[] } {
  const t0 = Math.floor((wallNow - 3_600_000) / 60_000) * 60_000;
  return {
    t0,
    events: STEPS.map((s, i) => ({
      event_id: `${prefix}-${i}`,
      sensor_id: "co2-ts",
      sensor_type: "co2",
      value: s.value,
      unit: "ppm",
      timestamp: new Date(s.at === null ? wallNow + 3_600_000 : t0 + s.at * 1000).toISOString(),
    })),
  };
}
