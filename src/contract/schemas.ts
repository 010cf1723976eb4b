/**
 * The wire contract: the shapes other systems already speak on our topics.
 * These zod schemas are the single source; every TypeScript type is inferred from them.
 *
 * @module
 */
import { z } from "zod";
import type { AlertAnomaly, AlertLimits, RuleKind } from "./records.ts";

export const SENSOR_TYPES = [
  "temperature",
  "humidity",
  "pressure",
  "motion",
  "light",
  "co2",
  "noise",
  "vibration",
] as const;

export const PRIORITIES = ["low", "normal", "high", "critical"] as const;

/** Schema versions of SensorEvent this service understands. */
export const KNOWN_SCHEMA_VERSIONS: readonly number[] = [1];

export const SensorType = z.enum(SENSOR_TYPES);
export type SensorType = z.infer<typeof SensorType>;

export const Priority = z.enum(PRIORITIES);
export type Priority = z.infer<typeof Priority>;

/**
 * ISO 8601 date-time. A value without an offset means UTC (the original producers wrote
 * `datetime.utcnow().isoformat()`), fractional seconds of any precision are accepted.
 */
export const Timestamp = z.iso.datetime({ offset: true, local: true });

/** A sensor reading on the sensor-events topic: the schema that validates it. */
export const SensorEvent = z.object({
  event_id: z.string().min(1),
  sensor_id: z.string().min(1),
  sensor_type: SensorType,
  value: z.number().check(z.refine(Number.isFinite, "must be a finite number")),
  unit: z.string(),
  timestamp: Timestamp,
  location: z.string().nullable().optional(),
  metadata: z.record(z.string(), z.unknown()).default({}),
  schema_version: z.int().default(1),
});
/** A sensor reading, as validated (defaults applied). */
export type SensorEvent = z.infer<typeof SensorEvent>;
export type SensorEventInput = z.input<typeof SensorEvent>;

/** An alert on the alerts topic: the schema that validates it (unknown fields are kept). */
export const SensorAlert = z.looseObject({
  alert_id: z.string().min(1),
  sensor_id: z.string().min(1),
  sensor_type: SensorType,
  priority: Priority,
  message: z.string(),
  value: z.number(),
  threshold: z.number().nullable(),
  timestamp: Timestamp,
  acknowledged: z.boolean(),
  rule_id: z.string(),
  /** `firing` for a new or repeated alert, `resolved` for the end of an episode. */
  state: z.enum(["firing", "resolved"]).default("firing"),
  event_id: z.string().optional(),
  location: z.string().nullable().optional(),
  unit: z.string().optional(),
  labels: z.record(z.string(), z.string()).default({}),
  /**
   * Raised again while the engine re-read records it had processed before (its group's offsets were
   * reset): the same `alert_id` and state as the first time, so a consumer may drop it.
   */
  replayed: z.boolean().optional(),
});

/**
 * The fields this service adds to the alerts it raises (src/alerts/lifecycle.ts), beyond the contract
 * above. Typed for the service's own code, not validated: an alert of another producer passes as
 * before and the topic's schema keeps its meaning. Code that reads them off the topic still checks
 * their type (`notificationId`, `alertKey`).
 */
export interface RaisedAlertFields {
  /** The rule's description. */
  description?: string;
  /** What the rule looks at: each event, each closed window, or the absence of events. */
  kind?: RuleKind;
  /** The rule's group: the sensor id, or a window rule's `group_by` values. */
  group?: string;
  /** Repeats sent for this episode so far (0 for the first notice). */
  repeat?: number;
  /** When the episode fired (event time, ISO 8601); null on a notice before it fired. */
  fired_at?: string | null;
  /** When the service produced this notice (wall clock). */
  raised_at?: string;
  /** The triggering event, for event rules. */
  event?: SensorEvent;
  /** The closed window's aggregate, for window rules. */
  aggregate?: Record<string, unknown>;
  /** Set on the re-published alert of an acknowledgement: state for consumers, not a new notification. */
  ack_update?: boolean;
  /** Who acknowledged the alert (the API's caller). */
  acknowledged_by?: string;
  /** When the alert was acknowledged (wall clock, ISO 8601). */
  acknowledged_at?: string;
  /** Why an episode ended other than by its condition, on its resolved notice ("rule changed", …). */
  resolved_reason?: string;
  /** `limits:` rules: the sensor's band and where it came from (table, level, key, file:line). */
  limits?: AlertLimits;
  /** Event rules with anomaly operations: how each operation judged the event. */
  anomaly?: AlertAnomaly[];
}
/** An alert as the engine writes it to the alerts topic (README, "The wire contract"). */
export type SensorAlert = z.infer<typeof SensorAlert> & RaisedAlertFields;

export const AggregatedSensorEvent = z.looseObject({
  sensor_id: z.string(),
  sensor_type: SensorType,
  avg_value: z.number(),
  min_value: z.number(),
  max_value: z.number(),
  count: z.int().nonnegative(),
  window_start: Timestamp,
  window_end: Timestamp,
  unit: z.string(),
});
export type AggregatedSensorEvent = z.infer<typeof AggregatedSensorEvent>;

export const DLQ_STAGES = ["decode", "validate", "rule", "alert", "notify", "source"] as const;
export const DlqStage = z.enum(DLQ_STAGES);
export type DlqStage = z.infer<typeof DlqStage>;

export const DlqRecord = z.looseObject({
  original_topic: z.string(),
  original_key: z.string().nullable(),
  original_value: z.string().nullable(),
  error: z.string(),
  retry_count: z.int().nonnegative(),
  original_partition: z.int().nullable(),
  original_offset: z.string().nullable(),
  stage: DlqStage,
  failed_at: Timestamp,
});
export type DlqRecord = z.infer<typeof DlqRecord>;

/** The Kafka key of an event or alert: `<sensor_type>:<sensor_id>`. */
export function sensorKey(e: { sensor_type: string; sensor_id: string }): string {
  return `${e.sensor_type}:${e.sensor_id}`;
}

/**
 * The Kafka key of an alert: its sensor's key, or for a window alert its group's (`<sensor_type>:<group>`),
 * so every notice of an episode, and every episode of a group, lands on one partition in order.
 */
export function alertKey(a: SensorAlert): string {
  return (a.kind === "window" || a.kind === "sequence") && typeof a.group === "string"
    ? `${a.sensor_type}:${a.group}`
    : sensorKey(a);
}
