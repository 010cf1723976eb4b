/**
 * Records that pass between stages inside the service (not on a topic): declared here so that a stage
 * and the ones it hands records to import them from below, never from each other.
 *
 * @module
 */

/** A message as any source delivers it. */
export interface InputRecord {
  topic: string;
  partition: number | null;
  offset: string | null;
  key: string | null;
  value: Uint8Array | string | null;
  /**
   * The value's real size in bytes when the source kept only its beginning (an NDJSON line longer
   * than the limit): such a record is dead-lettered as too large.
   */
  size?: number;
  /** The source processed this record before (its offsets were reset): alerts it raises are marked. */
  replayed?: boolean;
}

/** What a rule looks at: each event, each closed window, the absence of events, or events in order. */
export type RuleKind = "event" | "window" | "deadman" | "sequence";

/** Why a rule fired: the values it saw (the rules hand it to the alert lifecycle). */
export interface Verdict {
  threshold: number | null;
  /** Which bound of a threshold was crossed. */
  bound: "min" | "max" | null;
  /** A `limits:` rule: the sensor's band and where it came from (src/rules/limits.ts). */
  limits?: AlertLimits;
}

/** The band a `limits:` rule applied to the sensor, and where it came from. */
export interface AlertLimits {
  /** The lower bound, or null when the band has none. */
  min: number | null;
  /** The upper bound, or null when the band has none. */
  max: number | null;
  /** The table's level the band came from: `sensor_id`, `location`, `sensor_type` or `default`. */
  from: string;
  /** The sensor id, location or sensor type of the entry; absent for the default. */
  key?: string;
  /** The limits table's name. */
  table: string;
  /** `file:line` of the entry. */
  source: string;
}

/** How an anomaly operation of an event rule judged the event's value. */
export interface AlertAnomaly {
  /** `ewma`, `zscore`, `robust_zscore` or `rate_of_change`. */
  operation: string;
  /** The field judged (`value`, `metadata.<key>`). */
  field: string;
  /** The value judged. */
  value: number;
  /** The mean (`ewma`, `zscore`), the median (`robust_zscore`) or the previous value (`rate_of_change`). */
  baseline: number;
  /** The standard deviation, its robust estimate (1.4826 × MAD), or the change since the previous value. */
  deviation: number;
  /** What the operation returned. */
  score: number;
}
