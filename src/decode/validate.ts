/**
 * The hot path's check of a SensorEvent: the same verdict and the same output as
 * `SensorEvent.safeParse` (the single source of the shape), without zod's per-field machinery. On
 * null the caller runs zod, which says what is wrong. The differential test holds the two together.
 *
 * @module
 */
import { SENSOR_EVENT_FIELDS, SENSOR_TYPES, type SensorEvent } from "../contract/schemas.ts";
import { parseIsoTimestamp } from "./timestamp.ts";

const TYPES: ReadonlySet<unknown> = new Set(SENSOR_TYPES);

/** The parsed event when `json` (a JSON object) is a valid SensorEvent, else null. */
export function validateSensorEvent(json: Record<string, unknown>): SensorEvent | null {
  const { event_id, sensor_id, sensor_type, value, unit, timestamp, location } = json;
  if (typeof event_id !== "string" || event_id.length === 0) return null;
  if (typeof sensor_id !== "string" || sensor_id.length === 0) return null;
  if (!TYPES.has(sensor_type)) return null;
  if (typeof value !== "number" || !Number.isFinite(value)) return null;
  if (typeof unit !== "string" || typeof timestamp !== "string") return null;
  if (Number.isNaN(parseIsoTimestamp(timestamp))) return null;
  const hasLocation = Object.hasOwn(json, "location");
  if (hasLocation && location !== null && typeof location !== "string") return null;
  let metadata = json.metadata;
  if (metadata === undefined) {
    metadata = {};
  } else if (metadata === null || typeof metadata !== "object" || Array.isArray(metadata)) {
    return null;
  } else if (Object.hasOwn(metadata, "__proto__")) {
    // zod builds the record anew and leaves this key out (assigning it would set the prototype).
    metadata = withoutProto(metadata as Record<string, unknown>);
  }
  let schema_version = json.schema_version;
  if (schema_version === undefined) {
    schema_version = 1;
  } else if (!Number.isSafeInteger(schema_version)) {
    return null;
  }
  // A producer that writes the fields zod writes, in its order and nothing else (the simulator, a
  // service that sends what it read), gets its own object back: one object less per event.
  if (metadata === json.metadata && schema_version === json.schema_version && inZodOrder(json, hasLocation)) {
    return json as unknown as SensorEvent;
  }
  // Field order as zod writes it: the event is serialised again into alerts. Two literals, not a
  // conditional spread: this runs per event, and a literal keeps one object shape without copying.
  return hasLocation
    ? {
      event_id,
      sensor_id,
      sensor_type: sensor_type as SensorEvent["sensor_type"],
      value,
      unit,
      timestamp,
      location: location as string | null,
      metadata: metadata as Record<string, unknown>,
      schema_version: schema_version as number,
    }
    : {
      event_id,
      sensor_id,
      sensor_type: sensor_type as SensorEvent["sensor_type"],
      value,
      unit,
      timestamp,
      metadata: metadata as Record<string, unknown>,
      schema_version: schema_version as number,
    };
}

/** zod's output keys in its order (the schema's), with and without the optional `location`. */
const KEYS_WITH_LOCATION: readonly string[] = SENSOR_EVENT_FIELDS;
const KEYS: readonly string[] = SENSOR_EVENT_FIELDS.filter((key) => key !== "location");

/** Whether `json` has exactly the keys zod's output has, in its order (`for…in` builds no array). */
function inZodOrder(json: Record<string, unknown>, hasLocation: boolean): boolean {
  const keys = hasLocation ? KEYS_WITH_LOCATION : KEYS;
  let i = 0;
  for (const key in json) {
    if (key !== keys[i++]) return false;
  }
  return i === keys.length;
}

function withoutProto(o: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(o)) if (key !== "__proto__") out[key] = o[key];
  return out;
}
