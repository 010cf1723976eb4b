/**
 * What the engine did, for the operator: a log line every few seconds while it runs, and the table
 * printed at shutdown.
 *
 * @module
 */
import { type Logger, print } from "../log.ts";
import type { Dispatcher } from "../notifiers/dispatcher.ts";
import type { Pipeline } from "../pipeline.ts";
import { formatStatsTable } from "../stats/stats.ts";
import type { EngineView } from "./types.ts";

/** The periodic summary of local modes. */
export function logSummary(p: Pipeline, logger: Logger): void {
  const dlq = p.counters.dead_lettered;
  logger.info("Summary", {
    events: p.counters.events,
    alerts: p.counters.alerts,
    open_alerts: p.tracker.size,
    dead_lettered: dlq,
    sensors: p.stats.size,
  });
}

/** The shutdown summary: per-sensor count and average, like the original consumer. */
export function printSummary(
  service: { pipeline: EngineView | null; dispatcher: Dispatcher | null; dlqFile: string | null },
): void {
  const p = service.pipeline;
  if (p === null) return;
  print(formatStatsTable(p.stats.all()));
  // Events, not DLQ records: events = accepted + duplicates + dead_lettered.
  const dlq = p.counters.dead_lettered;
  const notified = service.dispatcher?.counters.dead_lettered ?? 0;
  print(
    `events=${p.counters.events} accepted=${p.counters.accepted} duplicates=${p.counters.duplicates} ` +
      `dead_lettered=${dlq} alerts=${p.counters.alerts} notifications_dead_lettered=${notified}`,
  );
  if (dlq + notified > 0 && service.dlqFile !== null) {
    print(`Dead-lettered messages with their reasons: ${service.dlqFile}`);
  }
}
