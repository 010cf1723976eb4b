/**
 * The wire contract: the shapes other systems already speak on our topics.
 * The zod schemas validate; the types are written out next to them, with a doc comment per field, for
 * plugin authors and `deno doc` (the public API has no inferred types: `no-slow-types`). At the end of
 * this file the compiler checks each pair is the same type.
 *
 * @module
 */
import { z } from "zod";
import type { AlertAnomaly, AlertLimits, RuleKind } from "./records.ts";

/** The sensor types the contract knows. */
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

/** Alert priorities, lowest first. */
export const PRIORITIES = ["low", "normal", "high", "critical"] as const;

/** Schema versions of SensorEvent this service understands. */
export const KNOWN_SCHEMA_VERSIONS: readonly number[] = [1];

/** What a sensor measures: one of `SENSOR_TYPES`. */
export type SensorType = (typeof SENSOR_TYPES)[number];
/** Validates a sensor type. */
export const SensorType: z.ZodType<SensorType, SensorType> = z.enum(SENSOR_TYPES);

/** An alert's priority, one of `PRIORITIES` (lowest first); routes can match on it. */
export type Priority = (typeof PRIORITIES)[number];
/** Validates a priority. */
export const Priority: z.ZodType<Priority, Priority> = z.enum(PRIORITIES);

/**
 * ISO 8601 date-time. A value without an offset means UTC (the original producers wrote
 * `datetime.utcnow().isoformat()`), fractional seconds of any precision are accepted (an event's
 * timestamp is then held to `EVENT_LIMITS` at decode: at most 9 fraction digits and 64 characters).
 */
export const Timestamp: z.ZodType<string, string> = z.iso.datetime({ offset: true, local: true });

/**
 * A sensor reading, as validated (defaults applied). A type, not an interface, so that it is a
 * `Record<string, unknown>` too: rule conditions read its fields by name.
 */
export type SensorEvent = {
  /** Unique per reading: the duplicate check compares it. */
  event_id: string;
  /** The sensor; with `sensor_type` it makes the record's key, `<sensor_type>:<sensor_id>`. */
  sensor_id: string;
  /** What the sensor measures. */
  sensor_type: SensorType;
  /** The reading: a finite number. */
  value: number;
  /** The unit of `value`, as the sensor writes it. */
  unit: string;
  /**
   * When the sensor measured it (ISO 8601; without an offset it means UTC): the event time. At most 9
   * fraction digits (nanoseconds).
   */
  timestamp: string;
  /** Where the sensor is; rules can group and select by it. */
  location?: string | null | undefined;
  /** Anything else the sensor sends; rules read it as `metadata.<field>`. */
  metadata: Record<string, unknown>;
  /** The event schema's version: one of `KNOWN_SCHEMA_VERSIONS`. */
  schema_version: number;
};

/** A sensor reading as a producer writes it: `metadata` and `schema_version` may be left out. */
export type SensorEventInput = Omit<SensorEvent, "metadata" | "schema_version"> & {
  metadata?: Record<string, unknown> | undefined;
  schema_version?: number | undefined;
};

const sensorEvent = z.object({
  event_id: z.string().min(1),
  sensor_id: z.string().min(1),
  sensor_type: z.enum(SENSOR_TYPES),
  value: z.number().check(z.refine(Number.isFinite, "must be a finite number")),
  unit: z.string(),
  timestamp: Timestamp,
  location: z.string().nullable().optional(),
  metadata: z.record(z.string(), z.unknown()).default({}),
  schema_version: z.int().default(1),
});

/** A sensor reading on the sensor-events topic: the schema that validates it. */
export const SensorEvent: z.ZodType<SensorEvent, SensorEventInput> = sensorEvent;

/** The fields of a SensorEvent, as the contract lists them. */
export const SENSOR_EVENT_FIELDS: readonly string[] = Object.keys(sensorEvent.shape);

/** An alert on the alerts topic as the wire contract defines it; other fields are kept. */
export interface AlertContract {
  /** One episode of a rule for one group keeps its id across its repeats and its resolved notice. */
  alert_id: string;
  /** The sensor the alert is about (for window rules, the newest sensor of the window's group). */
  sensor_id: string;
  /** The sensor's type. */
  sensor_type: SensorType;
  /** The rule's priority (raised by escalation where a rule has one). */
  priority: Priority;
  /** The rule's message with its placeholders filled in. */
  message: string;
  /** The value that triggered it (for window rules, the aggregate the condition read). */
  value: number;
  /** The crossed threshold, when the rule has one. */
  threshold: number | null;
  /** Event time of the observation (ISO 8601). */
  timestamp: string;
  /** Whether someone acknowledged the episode (no more repeats). */
  acknowledged: boolean;
  /** The rule that raised it. */
  rule_id: string;
  /** `firing` for a new or repeated alert, `resolved` for the end of an episode. */
  state: "firing" | "resolved";
  /** The triggering event's id, for event rules. */
  event_id?: string | undefined;
  /** The sensor's location, when it sent one. */
  location?: string | null | undefined;
  /** The unit of `value`. */
  unit?: string | undefined;
  /** The rule's labels; routes can match on them. */
  labels: Record<string, string>;
  /**
   * Raised again while the engine re-read records it had processed before (its group's offsets were
   * reset): the same `alert_id` and state as the first time, so a consumer may drop it.
   */
  replayed?: boolean | undefined;
  /** Fields of other producers, kept as they are. */
  [field: string]: unknown;
}

const sensorAlert = z.looseObject({
  // Printable ASCII, as the service's own ids are (hex): it is the notification's id, a header of
  // the request (`webhook-id`), where a line break or a character past U+00FF made every try fail.
  alert_id: z.string().min(1).max(256).regex(
    /^[\x21-\x7e]+$/,
    "must be printable ASCII without spaces (it goes into notification headers)",
  ),
  sensor_id: z.string().min(1),
  sensor_type: z.enum(SENSOR_TYPES),
  priority: z.enum(PRIORITIES),
  message: z.string(),
  value: z.number(),
  threshold: z.number().nullable(),
  timestamp: Timestamp,
  acknowledged: z.boolean(),
  rule_id: z.string(),
  state: z.enum(["firing", "resolved"]).default("firing"),
  event_id: z.string().optional(),
  location: z.string().nullable().optional(),
  unit: z.string().optional(),
  labels: z.record(z.string(), z.string()).default({}),
  replayed: z.boolean().optional(),
});

/** An alert on the alerts topic: the schema that validates it (unknown fields are kept). */
export const SensorAlert: z.ZodType<SensorAlert, unknown> = sensorAlert;

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
  /** Escalation steps the episode has taken (its rule's `escalate`); absent or 0: none. */
  escalation?: number;
  /** True on the one notice of an episode found flapping, and on its alert while it flaps. */
  flapping?: boolean;
  /** On a storm guard's summary (never on the alerts topic): the notifications it stands for. */
  storm?: {
    held: number;
    /** The sensors with the most held notifications, at most 100 of them. */
    by_sensor: Record<string, number>;
    per: string;
    /** Sensors counted one by one (`by_sensor` lists the first of them). */
    sensors?: number;
    /** Held notifications of sensors not counted one by one (past the guard's bound on memory). */
    uncounted?: number;
  };
  /** `limits:` rules: the sensor's band and where it came from (table, level, key, file:line). */
  limits?: AlertLimits;
  /** Event rules with anomaly operations: how each operation judged the event. */
  anomaly?: AlertAnomaly[];
}
/** An alert as the engine writes it to the alerts topic (README, "The wire contract"). */
export interface SensorAlert extends AlertContract, RaisedAlertFields {}

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

/** True when A and B are the same type; a `true` constant of it compiles only then. */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
// The written-out types are the schemas' own: each line fails to compile when a field differs.
const _sensorEvent: Same<z.output<typeof sensorEvent>, SensorEvent> = true;
const _sensorEventInput: Same<z.input<typeof sensorEvent>, SensorEventInput> = true;
const _sensorAlert: Same<z.output<typeof sensorAlert>, AlertContract> = true;
