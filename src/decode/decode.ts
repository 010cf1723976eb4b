import type { z } from "zod";
import { KNOWN_SCHEMA_VERSIONS, SensorEvent, sensorKey } from "../contract/schemas.ts";
import { type BoundsReason, checkEventBounds, quoteCut } from "./bounds.ts";
import { parseIsoTimestamp } from "./timestamp.ts";
import { validateSensorEvent } from "./validate.ts";

/** Values larger than this are refused before parsing (a 2 MB value must not stall the stream). */
export const DEFAULT_MAX_EVENT_BYTES = 256 * 1024;

/** An event that passed decode and validation, with what the later stages need precomputed. */
export interface DecodedEvent {
  event: SensorEvent;
  /** Event time in epoch milliseconds. */
  time: number;
  key: string;
}

export type DecodeResult =
  | { ok: true; value: DecodedEvent }
  | { ok: false; stage: "decode" | "validate"; reason: InvalidReason; error: string };

/** Why an event was refused, as a short fixed code: a metrics label must not carry the message's values. */
export type InvalidReason =
  | "null_value"
  | "too_large"
  | "invalid_utf8"
  | "invalid_json"
  | "not_an_object"
  | "invalid_field"
  | "unsupported_schema_version"
  | "invalid_timestamp"
  | "future_timestamp"
  | "missing_key"
  | "key_mismatch"
  | BoundsReason;

export interface DecodeOptions {
  maxBytes?: number;
  /** When true a message key must be present; when present it must always match. */
  requireKey?: boolean;
  /**
   * Refuse events stamped further than this ahead of the wall clock (no check when absent): the
   * engine's event-time clock only moves forward, so one far-future event would close every window
   * and fire every deadman rule early.
   */
  maxFutureSkewMs?: number;
  /** The wall clock, epoch ms (tests set it). */
  now?: () => number;
}

/** The service's default for `maxFutureSkewMs`: producers' clocks may run a little fast. */
export const DEFAULT_MAX_FUTURE_SKEW_MS = 5 * 60_000;

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });
// Three times faster than the fatal decoder; only a text with U+FFFD in it needs the fatal one's verdict.
const utf8Lax = new TextDecoder("utf-8", { fatal: false, ignoreBOM: false });
const OFFSET_SUFFIX = /(?:Z|[+-]\d\d:\d\d)$/i;

/** Epoch milliseconds of a contract timestamp; a timestamp without offset is UTC. */
export function parseTimestamp(ts: string): number {
  const t = parseIsoTimestamp(ts);
  return Number.isNaN(t) ? Date.parse(OFFSET_SUFFIX.test(ts) ? ts : `${ts}Z`) : t;
}

/**
 * Turns one message value into a validated event, or a reason that names the field.
 * Never throws: every failure is a value the caller routes to the dead-letter queue.
 */
export function decodeEvent(
  value: Uint8Array | string | null | undefined,
  key: string | null,
  options: DecodeOptions = {},
): DecodeResult {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_EVENT_BYTES;
  if (value === null || value === undefined) {
    return { ok: false, stage: "decode", reason: "null_value", error: "Message value is null" };
  }
  const size = typeof value === "string" ? value.length : value.byteLength;
  if (size > maxBytes) return tooLarge(size, options);
  let text: string;
  if (typeof value === "string") {
    text = value;
  } else {
    try {
      text = utf8Lax.decode(value);
      if (text.includes("\uFFFD")) text = utf8.decode(value);
    } catch {
      return {
        ok: false,
        stage: "decode",
        reason: "invalid_utf8",
        error: "Message value is not valid UTF-8",
      };
    }
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    return {
      ok: false,
      stage: "decode",
      reason: "invalid_json",
      error: `Message value is not valid JSON: ${(err as Error).message}`,
    };
  }
  if (json === null || typeof json !== "object" || Array.isArray(json)) {
    return {
      ok: false,
      stage: "validate",
      reason: "not_an_object",
      error: `Message value must be a JSON object, got ${
        json === null ? "null" : Array.isArray(json) ? "an array" : typeof json
      }`,
    };
  }
  let event = validateSensorEvent(json as Record<string, unknown>);
  if (event === null) {
    const parsed = SensorEvent.safeParse(json);
    if (!parsed.success) {
      return {
        ok: false,
        stage: "validate",
        reason: "invalid_field",
        error: formatIssues(parsed.error.issues),
      };
    }
    event = parsed.data;
  }
  const outOfBounds = checkEventBounds(event);
  if (outOfBounds !== null) return { ok: false, stage: "validate", ...outOfBounds };
  if (!KNOWN_SCHEMA_VERSIONS.includes(event.schema_version)) {
    return {
      ok: false,
      stage: "validate",
      reason: "unsupported_schema_version",
      error: `Field "schema_version": version ${event.schema_version} is not supported (known: ${
        KNOWN_SCHEMA_VERSIONS.join(", ")
      })`,
    };
  }
  const time = parseTimestamp(event.timestamp);
  if (!Number.isFinite(time)) {
    return {
      ok: false,
      stage: "validate",
      reason: "invalid_timestamp",
      error: `Field "timestamp": ${quoteCut(event.timestamp)} is not a valid date`,
    };
  }
  if (options.maxFutureSkewMs !== undefined) {
    const ahead = time - (options.now ?? Date.now)();
    if (ahead > options.maxFutureSkewMs) {
      return {
        ok: false,
        stage: "validate",
        reason: "future_timestamp",
        error: `Field "timestamp": ${quoteCut(event.timestamp)} is ${
          Math.round(ahead / 1000)
        } s ahead of the wall clock (at most ${options.maxFutureSkewMs / 1000} s allowed)`,
      };
    }
  }
  if (key !== null && key !== undefined && isSensorKey(key, event)) {
    return { ok: true, value: { event, time, key } };
  }
  const expectedKey = sensorKey(event);
  if (key === null || key === undefined) {
    if (options.requireKey) {
      return {
        ok: false,
        stage: "validate",
        reason: "missing_key",
        error: `Message key is missing (expected ${quoteCut(expectedKey)})`,
      };
    }
  } else if (key !== expectedKey) {
    return {
      ok: false,
      stage: "validate",
      reason: "key_mismatch",
      error: `Message key ${quoteCut(key)} does not match "<sensor_type>:<sensor_id>" (${
        quoteCut(expectedKey)
      })`,
    };
  }
  return { ok: true, value: { event, time, key: expectedKey } };
}

/** The refusal of a value of `size` bytes, over the limit (also for a value its source cut short). */
export function tooLarge(size: number, options: DecodeOptions = {}): DecodeResult & { ok: false } {
  return {
    ok: false,
    stage: "decode",
    reason: "too_large",
    error: `Message value of ${size} bytes exceeds the limit of ${
      options.maxBytes ?? DEFAULT_MAX_EVENT_BYTES
    } bytes`,
  };
}

/** `Field "value": expected number, received string; field "unit": ...` */
export function formatIssues(issues: readonly z.core.$ZodIssue[]): string {
  return issues.map((issue) => {
    const path = issue.path.length === 0 ? "(root)" : issue.path.map(String).join(".");
    return `Field "${path}": ${issue.message.replace(/^Invalid input: /, "")}`;
  }).join("; ");
}

/** `key === sensorKey(event)` without building the expected key for every event. */
function isSensorKey(key: string, event: SensorEvent): boolean {
  const type = event.sensor_type;
  return key.length === type.length + 1 + event.sensor_id.length && key.charCodeAt(type.length) === 58 &&
    key.startsWith(type) && key.endsWith(event.sensor_id);
}
