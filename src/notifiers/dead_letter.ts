import { type SensorAlert, sensorKey } from "../contract/schemas.ts";
import { buildDlqRecord } from "../dlq/record.ts";
import { redact } from "../log.ts";
import type { OutRecord } from "../transport/output.ts";
import type { FailureReason } from "./errors.ts";

/** One try of a notification, as kept in its DLQ record. */
export interface AttemptRecord {
  attempt: number;
  at: string;
  reason: FailureReason;
  status?: number;
  error: string;
}

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
