/**
 * A `Service` as the HTTP server reads it, with no engine behind it: a fleet of sensors in a
 * `StatsStore`, one threshold rule, no open alert. Tests of the HTTP layer and their benchmarks
 * build it here and replace what they are about (`over`, merged at the top level; `pipeline` merged
 * into the pipeline).
 */
import { parseOneRule } from "../../src/backtest/whatif.ts";
import type { Service } from "../../src/service.ts";
import { StatsStore } from "../../src/stats/stats.ts";

/** `sensors` temperature sensors at 20-26 °C over 20 halls, ids `temp-00000` on (`digits` wide). */
export function fleetStats(sensors: number, digits = 5): StatsStore {
  const stats = sensors === 0 ? new StatsStore() : new StatsStore(60, sensors);
  for (let i = 0; i < sensors; i++) {
    stats.update({
      event_id: `e-${i}`,
      sensor_id: `temp-${String(i).padStart(digits, "0")}`,
      sensor_type: "temperature",
      value: 20 + (i % 7),
      unit: "°C",
      timestamp: "2026-01-01T00:00:00.000Z",
      location: `hall-${i % 20}`,
      metadata: {},
      schema_version: 1,
    }, Date.UTC(2026, 0, 1));
  }
  return stats;
}

export function fakeService(
  opts: {
    sensors?: number;
    digits?: number;
    pipeline?: Record<string, unknown>;
    over?: Record<string, unknown>;
  } = {},
): Service {
  const sensors = opts.sensors ?? 0;
  return {
    pipeline: {
      counters: { events: sensors, accepted: sensors, duplicates: 0, dead_letters: {}, alerts: 0 },
      stats: fleetStats(sensors, opts.digits),
      tracker: { active: () => [], flapping: () => [], size: 0 },
      ...opts.pipeline,
    },
    dispatcher: null,
    notifiers: { status: () => ({ reload_errors: 0, loaded_at: null, errors: [] }) },
    registry: {
      ruleSet: parseOneRule("id: hot\nsensor_type: temperature\nthreshold: { max: 30 }\npriority: high\n"),
      dir: "rules",
      lastGoodReload: new Date(),
      reloadErrors: 0,
      status: () => [],
      problems: () => [],
    },
    silences: { silencing: () => [] },
    kafka: null,
    ready: () => true,
    ...opts.over,
  } as unknown as Service;
}
