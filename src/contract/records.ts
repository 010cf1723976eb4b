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
  limits?: {
    min: number | null;
    max: number | null;
    from: string;
    key?: string;
    table: string;
    source: string;
  };
}
