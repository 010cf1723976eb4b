/**
 * Bounds on an event's fields, checked at decode. The size limit of a message (256 KiB) is not
 * enough on its own: a 200 KB `metadata` nested 100,000 levels deep makes `JSON.stringify` of the
 * alert that carries it throw, and every event id or sensor id is kept in long-lived tables (the
 * duplicate filter remembers 100,000 ids, the stats table one entry per sensor), so their memory is
 * count × length: 1,000 events with 200 KB event ids and 50 KB sensor ids held 262 MB of heap.
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
export type BoundsReason = "field_too_long" | "metadata_too_deep" | "metadata_too_large";

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
          error: `Field "${_format(path)}": key "${
            key.slice(0, 40)
          }…" has ${key.length} characters, at most ${L.metadataKeyChars} allowed`,
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
    parts.push(p.key.length > 40 ? `${p.key.slice(0, 40)}…` : p.key);
  }
  return ["metadata", ...parts.reverse()].join(".");
}

function _tooLong(field: string, value: string, max: number): BoundsViolation {
  return {
    reason: "field_too_long",
    error: `Field "${field}": ${value.length} characters, at most ${max} allowed`,
  };
}
