/**
 * Bounds on an event's fields, checked at decode. The size limit of a message (256 KiB) is not
 * enough on its own: a 200 KB `metadata` nested 100,000 levels deep makes `JSON.stringify` of the
 * alert that carries it throw, and every event id or sensor id is kept in long-lived tables (the
 * duplicate filter remembers 100,000 ids, the stats table one entry per sensor), so their memory is
 * count × length: 1,000 events with 200 KB event ids and 50 KB sensor ids held 262 MB of heap. The
 * timestamp rides along too, in the event every event-rule alert carries (kept in its episode, the
 * API's recent alerts, the changelog): 1,000 hot events with 250,000-digit fractions held 253 MB of heap
 * (3.0 MB with 3-digit ones), and GET /api/alerts wrote 300 MB of JSON per request.
 *
 * @module
 */
import type { SensorEvent } from "../contract/schemas.ts";

/** The limits, in UTF-16 code units (JavaScript string length), documented in README "Input limits". */
export const EVENT_LIMITS = {
  /** A UUID is 36; with the duplicate filter's 100,000 ids at most ~26 MB even in two-byte strings. */
  eventIdChars: 128,
  sensorIdChars: 128,
  unitChars: 32,
  locationChars: 256,
  /**
   * The longest form the contract takes is 35 (`2026-11-25T21:00:00.123456789+03:00`); the length is
   * checked first so a long one is refused by its size, before its fraction digits are counted.
   */
  timestampChars: 64,
  /** Nanoseconds: the finest clock a producer has; more digits say nothing and cost memory. */
  timestampFractionDigits: 9,
  /** Levels of objects and arrays, `metadata` itself being the first. */
  metadataDepth: 16,
  metadataKeyChars: 128,
  metadataStringChars: 4096,
  /** Keys and array items over all levels. */
  metadataEntries: 256,
  /** Characters of keys and strings over all levels. */
  metadataChars: 16 * 1024,
} as const;

/** Why an event is out of bounds: the same codes as decode's other reasons, for the metrics label. */
export type BoundsReason =
  | "field_too_long"
  | "metadata_too_deep"
  | "metadata_too_large"
  | "invalid_timestamp"
  | "control_character";

export interface BoundsViolation {
  reason: BoundsReason;
  error: string;
}

/** A violation of `EVENT_LIMITS` by a validated event, or null when it is within them. */
export function checkEventBounds(event: SensorEvent): BoundsViolation | null {
  const L = EVENT_LIMITS;
  if (event.event_id.length > L.eventIdChars) return _tooLong("event_id", event.event_id, L.eventIdChars);
  if (event.sensor_id.length > L.sensorIdChars) {
    return _tooLong("sensor_id", event.sensor_id, L.sensorIdChars);
  }
  if (event.unit.length > L.unitChars) return _tooLong("unit", event.unit, L.unitChars);
  const location = event.location;
  if (location != null && location.length > L.locationChars) {
    return _tooLong("location", location, L.locationChars);
  }
  const timestamp = event.timestamp;
  if (timestamp.length > L.timestampChars) return _tooLong("timestamp", timestamp, L.timestampChars);
  // A validated timestamp has its fraction, if any, after the seconds: `YYYY-MM-DDTHH:MM:SS.`
  if (timestamp.charCodeAt(19) === 46) {
    let end = 20;
    while (end < timestamp.length && _isDigit(timestamp.charCodeAt(end))) end++;
    if (end - 20 > L.timestampFractionDigits) {
      return {
        reason: "invalid_timestamp",
        error: `Field "timestamp": a fraction of a second of ${
          end - 20
        } digits, at most ${L.timestampFractionDigits} (nanoseconds) allowed`,
      };
    }
  }
  // A sensor id and a location become keys (the Kafka key, a rule's group and with it a part of a state
  // changelog key, whose parts are joined by U+0000) and land in log lines and dashboards; no sensor has
  // a reason to send a control character in them. A NUL in a sensor id lost its sensor's state on a
  // restart: two firing sensors wrote 2 changelog records, 1 was restored, 0 errors reported. Costs
  // 40 -> 97 ns per checkEventBounds on the bench fixture's events (timestamp checks: 40 -> 48 ns).
  const control = _control("sensor_id", event.sensor_id) ??
    (location != null ? _control("location", location) : null);
  if (control !== null) return control;
  _entries = 0;
  _chars = 0;
  // The common metadata is a few flat keys: the walk is a loop over them, no allocation.
  return _walk(event.metadata, 1, null);
}

let _entries = 0;
let _chars = 0;

/** The path of a value for a message: `metadata.a.b`, built only when there is something to say. */
interface _Path {
  parent: _Path | null;
  key: string;
}

function _walk(value: object, depth: number, path: _Path | null): BoundsViolation | null {
  const L = EVENT_LIMITS;
  if (depth > L.metadataDepth) {
    return {
      reason: "metadata_too_deep",
      error: `Field "${_format(path)}": nested deeper than ${L.metadataDepth} levels`,
    };
  }
  const isArray = Array.isArray(value);
  const keys = isArray ? null : Object.keys(value);
  const n = isArray ? (value as unknown[]).length : keys!.length;
  _entries += n;
  if (_entries > L.metadataEntries) {
    return {
      reason: "metadata_too_large",
      error: `Field "metadata": more than ${L.metadataEntries} entries`,
    };
  }
  for (let i = 0; i < n; i++) {
    const key = isArray ? null : keys![i]!;
    if (key !== null) {
      if (key.length > L.metadataKeyChars) {
        return {
          reason: "field_too_long",
          error: `Field "${_format(path)}": key ${
            quoteCut(key, 40)
          } has ${key.length} characters, at most ${L.metadataKeyChars} allowed`,
        };
      }
      _chars += key.length;
    }
    const v = isArray ? (value as unknown[])[i] : (value as Record<string, unknown>)[key!];
    if (typeof v === "string") {
      if (v.length > L.metadataStringChars) {
        return _tooLong(_format({ parent: path, key: key ?? String(i) }), v, L.metadataStringChars);
      }
      _chars += v.length;
    } else if (v !== null && typeof v === "object") {
      const found = _walk(v, depth + 1, { parent: path, key: key ?? String(i) });
      if (found !== null) return found;
    }
    if (_chars > L.metadataChars) {
      return {
        reason: "metadata_too_large",
        error: `Field "metadata": more than ${L.metadataChars} characters of keys and strings`,
      };
    }
  }
  return null;
}

function _format(path: _Path | null): string {
  const parts: string[] = [];
  for (let p = path; p !== null; p = p.parent) {
    // Escaped as in a JSON string, without its quotes: a key may hold `"` or a line break.
    parts.push(quoteCut(p.key, 40).slice(1, -1));
  }
  return ["metadata", ...parts.reverse()].join(".");
}

function _isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

/** The first control character (U+0000–U+001F, U+007F) of `value`, named with its field and index. */
function _control(field: string, value: string): BoundsViolation | null {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) {
      const code = c.toString(16).toUpperCase().padStart(4, "0");
      return {
        reason: "control_character",
        error: `Field "${field}": control character U+${code} at index ${i}`,
      };
    }
  }
  return null;
}

/**
 * A value a producer sent, for an error message or a log line: at most `max` characters (the rest
 * cut, with `…`), quoted and escaped as JSON, so a control character cannot start a forged line.
 */
export function quoteCut(value: string, max = 100): string {
  return JSON.stringify(value.length <= max ? value : `${value.slice(0, max)}…`);
}

function _tooLong(field: string, value: string, max: number): BoundsViolation {
  return {
    reason: "field_too_long",
    error: `Field "${field}": ${value.length} characters, at most ${max} allowed`,
  };
}
