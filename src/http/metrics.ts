/**
 * `/metrics`: every value is read from the stages' plain counters in a `collect()` callback at scrape
 * time, so the per-event path never calls the metrics library. The one exception is the batch
 * timing histogram, observed once per batch.
 *
 * @module
 */
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { Logger } from "../log.ts";
import type { BreakerState } from "../notifiers/breaker.ts";
import type { NotifierStats } from "../notifiers/dispatcher.ts";
import type { Service } from "../service.ts";
import type { ConsumerLag } from "./lag.ts";
import type { LiveFeed } from "./live.ts";
import { noiseMetrics } from "./noise_metrics.ts";
import { unhandledCounts } from "../notifiers/unhandled.ts";

export interface MetricsOptions {
  service: () => Service | null;
  live: LiveFeed;
  lag: () => ConsumerLag | null;
  logger: Logger;
}

const BREAKER_VALUE: Record<BreakerState["state"], number> = { closed: 0, "half-open": 1, open: 2 };

/** The counters of `NotifierStats` that are notification outcomes (`in_flight` is a gauge). */
const OUTCOMES = [
  "delivered",
  "failed",
  "retried",
  "dead_lettered",
] as const satisfies readonly (keyof NotifierStats)[];

export function createMetrics({ service, live, lag, logger }: MetricsOptions): Registry {
  const registry = new Registry();
  const pipeline = () => service()?.pipeline ?? null;
  const split = (key: string) => key.split("\u0000");
  const notifiers = () => Object.entries(service()?.dispatcher?.stats() ?? {});

  new Counter({
    name: "sensor_unhandled_errors_total",
    help:
      "Unhandled promise rejections and uncaught exceptions of plugins (or of unknown origin) the service kept running after, by plugin and kind",
    labelNames: ["plugin", "kind"],
    registers: [registry],
    collect() {
      this.reset();
      for (const { plugin, kind, count } of unhandledCounts()) this.inc({ plugin, kind }, count);
    },
  });
  new Counter({
    name: "sensor_events_consumed_total",
    help: "Records read from the events source, by topic and partition (partition none outside Kafka)",
    labelNames: ["topic", "partition"],
    registers: [registry],
    collect() {
      this.reset();
      for (const [key, n] of pipeline()?.counters.consumed ?? []) {
        const [topic = "", partition = ""] = split(key);
        this.inc({ topic, partition }, n);
      }
    },
  });
  new Counter({
    name: "sensor_events_invalid_total",
    help: "Records refused and dead-lettered, by stage (decode, validate, rule) and reason",
    labelNames: ["stage", "reason"],
    registers: [registry],
    collect() {
      this.reset();
      for (const [key, n] of pipeline()?.counters.invalid ?? []) {
        const [stage = "", reason = ""] = split(key);
        this.inc({ stage, reason }, n);
      }
    },
  });
  new Counter({
    name: "sensor_events_duplicate_total",
    help: "Events skipped because their event_id was seen recently",
    registers: [registry],
    collect() {
      this.reset();
      this.inc(pipeline()?.counters.duplicates ?? 0);
    },
  });
  new Counter({
    name: "sensor_events_accepted_total",
    help: "Valid, new events that went through every stage without being dead-lettered",
    registers: [registry],
    collect() {
      this.reset();
      this.inc(pipeline()?.counters.accepted ?? 0);
    },
  });
  new Counter({
    name: "sensor_events_late_total",
    help:
      "Events that arrived after their window closed (beyond allowed_lateness): left out of the aggregate",
    registers: [registry],
    collect() {
      this.reset();
      this.inc(pipeline()?.counters.late_events ?? 0);
    },
  });
  new Counter({
    name: "sensor_engine_sensors_forgotten_total",
    help:
      "Sensors a partition's engine forgot at MAX_SENSORS_PER_PARTITION: they held only their newest event time",
    registers: [registry],
    collect() {
      this.reset();
      this.inc(pipeline()?.counters.sensors_forgotten ?? 0);
    },
  });
  new Counter({
    name: "sensor_state_pieces_unwritten_total",
    help:
      "Pieces of engine state a checkpoint could not write to the changelog (over 900 KiB): written as tombstones, a restart forgets them",
    registers: [registry],
    collect() {
      this.reset();
      this.inc(pipeline()?.counters.state_unwritten ?? 0);
    },
  });
  new Counter({
    name: "sensor_sequence_partials_dropped_total",
    help:
      "Partial sequence matches dropped: reason cap (their group held max_open, or what one changelog record holds), timeout (no B within)",
    labelNames: ["reason"],
    registers: [registry],
    collect() {
      this.reset();
      const d = pipeline()?.counters.sequence_dropped;
      this.inc({ reason: "cap" }, d?.cap ?? 0);
      this.inc({ reason: "timeout" }, d?.timeout ?? 0);
    },
  });
  new Counter({
    name: "sensor_aggregates_total",
    help: "Closed windows published to the sensor-aggregates topic",
    registers: [registry],
    collect() {
      this.reset();
      this.inc(pipeline()?.counters.aggregates ?? 0);
    },
  });
  const batchSeconds = new Histogram({
    name: "sensor_batch_evaluation_seconds",
    help: "Time to decode, validate and evaluate the rules for one batch of records",
    buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1],
    registers: [registry],
  });
  live.batchObserver = (s) => batchSeconds.observe(s);

  new Gauge({
    name: "sensor_silences_active",
    help: "Silences in force now (started, not yet ended)",
    registers: [registry],
    collect() {
      this.set(service()?.silences.active ?? 0);
    },
  });
  new Counter({
    name: "sensor_notifications_suppressed_total",
    help: "Alerts this process's notifier stage did not notify because a silence matched them",
    registers: [registry],
    collect() {
      this.reset();
      this.inc(service()?.silences.suppressed ?? 0);
    },
  });
  new Gauge({
    name: "sensor_notifications_held",
    help: "Firing alerts silences hold back now, by this instance or another (notified when they end)",
    registers: [registry],
    collect() {
      this.set(service()?.silences.heldCount() ?? 0);
    },
  });
  new Counter({
    name: "sensor_silence_records_refused_total",
    help: "Silence records read from the silences topic (or file) and refused for the limits the API applies",
    registers: [registry],
    collect() {
      this.reset();
      this.inc(service()?.silences.refused ?? 0);
    },
  });
  new Counter({
    name: "sensor_notifications_released_total",
    help: "Held alerts this process notified when their silence ended while they still fired",
    registers: [registry],
    collect() {
      this.reset();
      this.inc(service()?.silences.released ?? 0);
    },
  });
  new Counter({
    name: "sensor_alerts_total",
    help: "Alerts raised, by rule, priority and state (firing, resolved)",
    labelNames: ["rule", "priority", "state"],
    registers: [registry],
    collect() {
      this.reset();
      for (const [key, n] of live.alertCounts) {
        const [rule = "", priority = "", state = ""] = split(key);
        this.inc({ rule, priority, state }, n);
      }
    },
  });
  new Gauge({
    name: "sensor_alerts_active",
    help: "Open alert episodes, by rule, priority and whether they are acknowledged",
    labelNames: ["rule", "priority", "acknowledged"],
    registers: [registry],
    collect() {
      this.reset();
      for (const ep of pipeline()?.tracker.active() ?? []) {
        if (ep.alert === null) continue;
        this.inc({ rule: ep.rule_id, priority: ep.alert.priority, acknowledged: String(ep.acknowledged) });
      }
    },
  });
  new Counter({
    name: "sensor_notifications_total",
    help: "Notification outcomes by notifier (delivered, failed, dead_lettered, …)",
    labelNames: ["notifier", "outcome"],
    registers: [registry],
    collect() {
      this.reset();
      for (const [notifier, s] of notifiers()) {
        for (const outcome of OUTCOMES) this.inc({ notifier, outcome }, s[outcome]);
      }
    },
  });
  new Gauge({
    name: "sensor_notifier_circuit_state",
    help: "Circuit breaker of each notifier: 0 closed, 1 half-open, 2 open",
    labelNames: ["notifier"],
    registers: [registry],
    collect() {
      this.reset();
      for (const [notifier, s] of notifiers()) this.set({ notifier }, BREAKER_VALUE[s.breaker.state]);
    },
  });
  new Gauge({
    name: "sensor_notifications_in_flight",
    help: "Notifications being delivered now, by notifier",
    labelNames: ["notifier"],
    registers: [registry],
    collect() {
      this.reset();
      for (const [notifier, s] of notifiers()) this.set({ notifier }, s.in_flight);
    },
  });
  new Counter({
    name: "sensor_dlq_records_total",
    help: "Records written to the dead-letter queue, by stage",
    labelNames: ["stage"],
    registers: [registry],
    collect() {
      this.reset();
      for (const [stage, n] of Object.entries(pipeline()?.counters.dead_letters ?? {})) {
        this.inc({ stage }, n);
      }
      const notify = notifiers().reduce((sum, [, s]) => sum + s.dead_lettered, 0);
      if (service()?.dispatcher) this.inc({ stage: "notify" }, notify);
    },
  });

  noiseMetrics(registry, service);

  let lastLagError = 0;
  new Gauge({
    name: "sensor_consumer_lag",
    help: "Records behind the end of each partition: end offset minus the group's committed offset",
    labelNames: ["group", "topic", "partition"],
    registers: [registry],
    async collect() {
      this.reset();
      const reader = lag();
      if (reader === null) return;
      try {
        for (const p of await reader.read()) {
          this.set({ group: p.group, topic: p.topic, partition: String(p.partition) }, p.lag);
        }
      } catch (err) {
        // A scrape every few seconds must not flood the log while the broker is away.
        if (Date.now() - lastLagError > 60_000) {
          lastLagError = Date.now();
          logger.warn("Cannot read consumer lag", { error: err });
        }
      }
    },
  });
  new Counter({
    name: "sensor_records_deleted_unread_total",
    help:
      "Records deleted (retention, DeleteRecords) before the group read them, by group, topic and partition",
    labelNames: ["group", "topic", "partition"],
    registers: [registry],
    collect() {
      this.reset();
      for (const s of service()?.kafka?.sources ?? []) {
        for (const [partition, n] of s.deletedUnread) {
          this.inc({ group: s.groupId, topic: s.topic, partition: String(partition) }, n);
        }
      }
    },
  });
  new Counter({
    name: "sensor_topic_recreated_total",
    help: "Times a consumed topic was found deleted and created again (a new topic id), by group and topic",
    labelNames: ["group", "topic"],
    registers: [registry],
    collect() {
      this.reset();
      for (const s of service()?.kafka?.sources ?? []) {
        if (s.recreations > 0) this.inc({ group: s.groupId, topic: s.topic }, s.recreations);
      }
    },
  });
  new Gauge({
    name: "sensor_partitions_held",
    help:
      "Partitions of the input topic held back unprocessed (their state changelog is not the one their offsets went with), by group and topic",
    labelNames: ["group", "topic"],
    registers: [registry],
    collect() {
      this.reset();
      for (const s of service()?.kafka?.sources ?? []) {
        this.set({ group: s.groupId, topic: s.topic }, s.held.size);
      }
    },
  });
  new Gauge({
    name: "sensor_consumer_joined",
    help: "1 when the consumer of this group has joined it (Kafka mode)",
    labelNames: ["group"],
    registers: [registry],
    collect() {
      this.reset();
      for (const s of service()?.kafka?.sources ?? []) this.set({ group: s.groupId }, s.joined ? 1 : 0);
    },
  });

  new Gauge({
    name: "sensor_process_resident_bytes",
    help: "Resident memory of the whole process, every thread's heap included",
    registers: [registry],
    collect() {
      this.set(Deno.memoryUsage().rss);
    },
  });
  new Gauge({
    name: "sensor_heap_bytes",
    help: "V8 heap by thread (main, engine-worker-K) and kind (used, total, external)",
    labelNames: ["thread", "kind"],
    registers: [registry],
    collect() {
      this.reset();
      const main = Deno.memoryUsage();
      const threads = [{
        thread: "main",
        heapUsed: main.heapUsed,
        heapTotal: main.heapTotal,
        external: main.external,
      }];
      for (const m of pipeline()?.workerMemory?.() ?? []) {
        threads.push({ thread: `engine-worker-${m.worker}`, ...m });
      }
      for (const m of threads) {
        this.set({ thread: m.thread, kind: "used" }, m.heapUsed);
        this.set({ thread: m.thread, kind: "total" }, m.heapTotal);
        this.set({ thread: m.thread, kind: "external" }, m.external);
      }
    },
  });

  new Gauge({
    name: "sensor_rules_loaded",
    help: "Rules in effect (enabled, from valid files or their last good version)",
    registers: [registry],
    collect() {
      this.set(service()?.registry.ruleSet.rules.length ?? 0);
    },
  });
  new Gauge({
    name: "sensor_rule_problems",
    help: "Problems in the rule files as they are on disk now (the last good rules stay in force)",
    registers: [registry],
    collect() {
      this.set(service()?.registry.problems().length ?? 0);
    },
  });
  new Gauge({
    name: "sensor_rule_files_stale",
    help: "Rule files whose version on disk is refused (invalid, emptied, duplicate id, too large, " +
      "unreadable): their last good version is in force",
    registers: [registry],
    collect() {
      this.set(service()?.registry.status().filter((f) => !f.current).length ?? 0);
    },
  });
  new Counter({
    name: "sensor_rule_file_parses_total",
    help: "Rule files parsed by reloads (an unchanged file is not parsed again)",
    registers: [registry],
    collect() {
      this.reset();
      this.inc(service()?.registry.parses ?? 0);
    },
  });
  new Counter({
    name: "sensor_rule_reload_errors_total",
    help: "Rule reloads that found at least one problem",
    registers: [registry],
    collect() {
      this.reset();
      this.inc(service()?.registry.reloadErrors ?? 0);
    },
  });
  new Gauge({
    name: "sensor_notifier_config_problems",
    help: "Problems in the notifier file (notifiers.yaml) as it is on disk now",
    registers: [registry],
    collect() {
      this.set(service()?.notifiers.status().errors.length ?? 0);
    },
  });
  new Counter({
    name: "sensor_notifier_config_reload_errors_total",
    help: "Loads of the notifier file that found it invalid",
    registers: [registry],
    collect() {
      this.reset();
      this.inc(service()?.notifiers.status().reload_errors ?? 0);
    },
  });
  new Gauge({
    name: "sensor_rules_last_good_reload_timestamp_seconds",
    help: "Unix time of the last reload without problems (0 before the first)",
    registers: [registry],
    collect() {
      const at = service()?.registry.lastGoodReload;
      this.set(at ? at.getTime() / 1000 : 0);
    },
  });
  new Gauge({
    name: "sensor_stream_clients",
    help: "Dashboards connected to /api/stream",
    registers: [registry],
    collect() {
      this.set(live.clients);
    },
  });
  return registry;
}
