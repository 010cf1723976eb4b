import assert from "node:assert/strict";
import { createMetrics } from "../../src/http/metrics.ts";
import { LiveFeed } from "../../src/http/live.ts";
import { Dispatcher, type NotifierInstance } from "../../src/notifiers/dispatcher.ts";
import type { Service } from "../../src/service.ts";
import { alert, captureLogger, notifierSet } from "../helpers/notifiers.ts";
import { Scrape } from "../helpers/metrics.ts";

Deno.test("/metrics reports each notifier's outcomes, breaker, in-flight count and notify DLQ records from the Dispatcher", async () => {
  const ok: NotifierInstance = { name: "ok", plugin: "test", notifier: { notify: () => Promise.resolve() } };
  const stuck: NotifierInstance = {
    name: "stuck",
    plugin: "test",
    notifier: { notify: () => new Promise(() => {}) },
  };
  const { logger } = captureLogger();
  const dispatcher = new Dispatcher({
    notifiers: () => notifierSet([ok, stuck], { policy: { timeoutMs: 20, maxAttempts: 2 } }),
    logger,
    deadLetter: () => Promise.resolve(),
    dlqTopic: "dlq",
    alertsTopic: "alerts",
  });
  await dispatcher.deliver([alert()]);
  // Only the Dispatcher is read by these metrics: the other parts of the service are not built.
  const service = { dispatcher, pipeline: null } as unknown as Service;
  const registry = createMetrics({ service: () => service, live: new LiveFeed(), lag: () => null, logger });
  const text = (await Promise.all(
    [
      "sensor_notifications_total",
      "sensor_notifier_circuit_state",
      "sensor_notifications_in_flight",
      "sensor_dlq_records_total",
    ].map((name) => registry.getSingleMetricAsString(name)),
  )).join("\n") + "\n";
  const m = new Scrape(text);
  assert.equal(m.value("sensor_notifications_total", { notifier: "ok", outcome: "delivered" }), 1);
  assert.equal(m.value("sensor_notifications_total", { notifier: "stuck", outcome: "failed" }), 2);
  assert.equal(m.value("sensor_notifications_total", { notifier: "stuck", outcome: "retried" }), 1);
  assert.equal(m.value("sensor_notifications_total", { notifier: "stuck", outcome: "dead_lettered" }), 1);
  assert.equal(m.value("sensor_notifier_circuit_state", { notifier: "ok" }), 0);
  assert.equal(m.value("sensor_notifications_in_flight", { notifier: "stuck" }), 0);
  assert.equal(m.value("sensor_dlq_records_total", { stage: "notify" }), 1);
  await dispatcher.close();
});
