/**
 * `/metrics` of noise control: flapping and escalated alerts (the engine's episodes), and what the
 * storm guard held back (the notifier stage). Read at scrape time, like every other metric.
 *
 * @module
 */
import { Counter, Gauge, type Registry } from "prom-client";
import type { Service } from "../service.ts";

export function noiseMetrics(registry: Registry, service: () => Service | null): void {
  new Gauge({
    name: "sensor_alerts_flapping",
    help: "Alerts whose notifications flap detection holds back now, by rule",
    labelNames: ["rule"],
    registers: [registry],
    collect() {
      this.reset();
      for (const f of service()?.pipeline?.tracker.flapping() ?? []) this.inc({ rule: f.rule_id });
    },
  });
  new Gauge({
    name: "sensor_alerts_escalated",
    help: "Open alert episodes raised by their rule's escalate, by rule and priority",
    labelNames: ["rule", "priority"],
    registers: [registry],
    collect() {
      this.reset();
      for (const ep of service()?.pipeline?.tracker.active() ?? []) {
        if ((ep.alert?.escalation ?? 0) > 0 && ep.alert !== null) {
          this.inc({ rule: ep.rule_id, priority: ep.alert.priority });
        }
      }
    },
  });
  new Counter({
    name: "sensor_notifications_inhibited_total",
    help: "Notifications not sent because a source alert of an inhibit rule fires, by the target's rule",
    labelNames: ["rule"],
    registers: [registry],
    collect() {
      this.reset();
      for (const [rule, n] of service()?.dispatcher?.inhibitedCounts() ?? []) this.inc({ rule }, n);
    },
  });
  new Counter({
    name: "sensor_inhibit_firing_dropped_total",
    help:
      "Firing alerts inhibition forgot at its caps (200,000 alerts, 64 Mi characters): their targets are notified again",
    registers: [registry],
    collect() {
      this.reset();
      this.inc(service()?.dispatcher?.inhibitSourcesDropped ?? 0);
    },
  });
  new Counter({
    name: "sensor_notifications_held_total",
    help: "Notifications the storm guard (max_notifications) held back, by rule",
    labelNames: ["rule"],
    registers: [registry],
    collect() {
      this.reset();
      for (const [rule, s] of service()?.dispatcher?.stormStats() ?? []) this.inc({ rule }, s.held);
    },
  });
  new Counter({
    name: "sensor_notification_summaries_total",
    help: "Summaries the storm guard sent instead of the notifications it held back, by rule",
    labelNames: ["rule"],
    registers: [registry],
    collect() {
      this.reset();
      for (const [rule, s] of service()?.dispatcher?.stormStats() ?? []) this.inc({ rule }, s.summaries);
    },
  });
  new Counter({
    name: "sensor_notification_repeats_dropped_total",
    help:
      "Firing alerts a route's repeat_interval no longer re-sends: dropped, oldest first, past 1,000 per " +
      "group or 10,000 in all, by notifier",
    labelNames: ["notifier"],
    registers: [registry],
    collect() {
      this.reset();
      for (const [notifier, n] of service()?.dispatcher?.repeatsDropped() ?? []) this.inc({ notifier }, n);
    },
  });
}
