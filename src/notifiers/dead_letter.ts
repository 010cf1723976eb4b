import { type SensorAlert, sensorKey } from "../contract/schemas.ts";
import { buildDlqRecord } from "../dlq/record.ts";
import { redact } from "../log.ts";
import type { OutRecord } from "../transport/output.ts";
import type { AttemptRecord, Notification } from "./plugin.ts";

export interface NotifyFailure {
  alert: SensorAlert;
  notifier: string;
  plugin: string;
  notificationId: string;
  deliveryId: string;
  attempts: AttemptRecord[];
  error: string;
}

/** The fields a `stage: notify` DLQ record adds to the common ones (what `dlq:replay` reads back). */
export interface NotifyDlqFields {
  notifier: string;
  plugin: string;
  notification_id: string;
  delivery_id: string;
  rule_id: string;
  attempts: AttemptRecord[];
}

/** A notification that failed for good, as a DLQ record; every text in it passes through `redact`. */
export function notifyDlqRecord(f: NotifyFailure, topics: { alerts: string; dlq: string }): OutRecord {
  const key = sensorKey(f.alert);
  const extra: NotifyDlqFields = {
    notifier: f.notifier,
    plugin: f.plugin,
    notification_id: f.notificationId,
    delivery_id: f.deliveryId,
    rule_id: f.alert.rule_id,
    attempts: f.attempts.map((a) => ({ ...a, error: redact(a.error) })),
  };
  const record = buildDlqRecord({
    topic: topics.alerts,
    key,
    value: JSON.stringify(f.alert),
    partition: null,
    offset: null,
    stage: "notify",
    error: redact(`Notifier "${f.notifier}" failed: ${f.error}`),
    retryCount: Math.max(0, f.attempts.length - 1),
    extra: { ...extra },
  });
  return { topic: topics.dlq, key, value: redact(JSON.stringify(record)) };
}

/**
 * DLQ records for notifications (what `PluginContext.deadLetter` writes): a notification without a
 * `failure` was dead-lettered on purpose (routed to the dlq notifier).
 */
export function notificationDlqRecords(
  batch: readonly Notification[],
  topics: { alerts: string; dlq: string },
): OutRecord[] {
  return batch.map((n) =>
    notifyDlqRecord({
      alert: n.alert,
      notifier: n.failure?.notifier ?? "dlq",
      plugin: n.failure?.plugin ?? "dlq",
      notificationId: n.id,
      deliveryId: n.failure?.delivery_id ?? n.id,
      attempts: n.failure?.attempts ?? [],
      error: n.failure?.error ?? "Routed to the dead-letter queue",
    }, topics)
  );
}
