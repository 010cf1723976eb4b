/**
 * decodeEvent() is the boundary between the topic and the engine: whatever arrives, it returns a
 * value (an event, or a reason for the DLQ) and never throws.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { SENSOR_TYPES } from "../../src/contract/schemas.ts";
import { decodeEvent, type DecodeResult, parseTimestamp } from "../../src/decode/decode.ts";
import { checkProperty } from "../helpers/property.ts";

const REASON = /Field "[^"]+"|Message value|Message key/;

/** A refusal is a value with a stage and a message that names the field, the value or the key. */
function assertWellFormed(r: DecodeResult): void {
  if (r.ok) return;
  assert.ok(r.stage === "decode" || r.stage === "validate", r.stage);
  assert.equal(typeof r.reason, "string");
  assert.match(r.error, REASON);
}

const timestamp = fc.tuple(
  fc.date({
    min: new Date("1970-01-01T00:00:00Z"),
    max: new Date("2100-01-01T00:00:00Z"),
    noInvalidDate: true,
  }),
  fc.constantFrom("Z", "", "+00:00", "+03:00", "-05:30"),
  fc.boolean(),
).map(([d, suffix, millis]) => {
  const iso = d.toISOString().slice(0, millis ? 23 : 19);
  // The wall-clock digits of an offset timestamp are the UTC instant moved by the offset.
  if (suffix === "Z" || suffix === "") return { text: `${iso}${suffix}`, time: Date.parse(`${iso}Z`) };
  const sign = suffix[0] === "+" ? 1 : -1;
  const offsetMs = sign * (Number(suffix.slice(1, 3)) * 60 + Number(suffix.slice(4))) * 60_000;
  const local = new Date(Date.parse(`${iso}Z`) + offsetMs).toISOString().slice(0, millis ? 23 : 19);
  return { text: `${local}${suffix}`, time: Date.parse(`${iso}Z`) };
});

const validEvent = fc.record({
  event_id: fc.string({ minLength: 1 }),
  sensor_id: fc.string({ minLength: 1 }),
  sensor_type: fc.constantFrom(...SENSOR_TYPES),
  value: fc.double({ noNaN: true, noDefaultInfinity: true }),
  unit: fc.string(),
  timestamp,
  location: fc.option(fc.string(), { nil: undefined }).chain((l) =>
    fc.constantFrom(l, null as string | null | undefined)
  ),
  metadata: fc.option(fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 2 })), { nil: undefined }),
  schema_version: fc.constantFrom(1, undefined),
}).map(({ timestamp, ...e }) => ({
  event: Object.fromEntries(
    Object.entries({ ...e, timestamp: timestamp.text }).filter(([, v]) => v !== undefined),
  ) as Record<string, unknown>,
  time: timestamp.time,
}));

Deno.test("decodeEvent() never throws on arbitrary bytes and keys, and refuses them with a reason", () => {
  checkProperty(
    fc.property(fc.uint8Array({ maxLength: 512 }), fc.option(fc.string({ maxLength: 40 })), (bytes, key) => {
      assertWellFormed(decodeEvent(bytes, key));
    }),
    300,
  );
});

Deno.test("decodeEvent() never throws on arbitrary JSON, and every refusal names a field or the message", () => {
  checkProperty(
    fc.property(fc.jsonValue({ maxDepth: 4 }), fc.boolean(), (json, asBytes) => {
      const text = JSON.stringify(json);
      const r = decodeEvent(asBytes ? new TextEncoder().encode(text) : text, null);
      assertWellFormed(r);
      // Only an object can be an event.
      if (json === null || typeof json !== "object" || Array.isArray(json)) assert.equal(r.ok, false);
    }),
    300,
  );
});

Deno.test("decodeEvent() accepts every valid event, with its instant and key", () => {
  checkProperty(
    fc.property(validEvent, fc.boolean(), ({ event, time }, keyed) => {
      const key = `${event.sensor_type}:${event.sensor_id}`;
      const r = decodeEvent(new TextEncoder().encode(JSON.stringify(event)), keyed ? key : null);
      if (!r.ok) assert.fail(`Refused a valid event: ${r.error}`);
      assert.equal(r.value.time, time);
      assert.equal(r.value.time, parseTimestamp(event.timestamp as string));
      assert.equal(r.value.key, key);
      // -0 travels as 0 in JSON.
      assert.equal(r.value.event.value, JSON.parse(JSON.stringify(event.value)));
    }),
    300,
  );
});

const REQUIRED = ["event_id", "sensor_id", "sensor_type", "value", "unit", "timestamp"] as const;
const notAString = fc.oneof(
  fc.integer(),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.string(), { maxLength: 2 }),
);
/** Per field, values that the contract refuses whatever else the event holds. */
const WRONG: Record<string, fc.Arbitrary<unknown>> = {
  event_id: fc.oneof(notAString, fc.constant("")),
  sensor_id: fc.oneof(notAString, fc.constant("")),
  sensor_type: fc.oneof(
    notAString,
    fc.string().filter((s) => !(SENSOR_TYPES as readonly string[]).includes(s)),
  ),
  value: fc.oneof(fc.string(), fc.boolean(), fc.constant(null), fc.dictionary(fc.string(), fc.integer())),
  unit: notAString,
  timestamp: fc.oneof(
    notAString,
    fc.constantFrom("yesterday", "2026-11-25", "21:00:00", "2026-13-01T00:00:00Z"),
  ),
  location: fc.oneof(fc.integer(), fc.boolean(), fc.array(fc.string(), { maxLength: 2 })),
  metadata: fc.oneof(fc.string(), fc.integer(), fc.constant(null), fc.array(fc.integer(), { maxLength: 2 })),
  schema_version: fc.oneof(fc.string(), fc.double({ min: 1.1, max: 9.9, noNaN: true }), fc.constant(null)),
};

Deno.test("decodeEvent() refuses a valid event with one field removed or of a wrong type, naming that field", () => {
  const mutation = fc.oneof(
    fc.record({ kind: fc.constant("remove" as const), field: fc.constantFrom(...REQUIRED) }),
    fc.constantFrom(...Object.keys(WRONG)).chain((field) =>
      WRONG[field]!.map((value) => ({ kind: "set" as const, field, value }))
    ),
  );
  checkProperty(
    fc.property(validEvent, mutation, ({ event }, m) => {
      const mutated = { ...event };
      if (m.kind === "remove") delete mutated[m.field];
      else mutated[m.field] = m.value;
      const r = decodeEvent(JSON.stringify(mutated), null);
      if (r.ok) assert.fail(`Accepted ${JSON.stringify(mutated)}`);
      assert.equal(r.stage, "validate");
      assert.ok(r.error.includes(`Field "${m.field}`), `"${r.error}" does not name "${m.field}"`);
    }),
    300,
  );
});

Deno.test("decodeEvent() refuses a key that is not <sensor_type>:<sensor_id>, naming the key", () => {
  checkProperty(
    fc.property(validEvent, fc.string(), ({ event }, key) => {
      fc.pre(key !== `${event.sensor_type}:${event.sensor_id}`);
      const r = decodeEvent(JSON.stringify(event), key);
      if (r.ok) assert.fail(`Accepted key "${key}"`);
      assert.equal(r.reason, "key_mismatch");
      assert.match(r.error, /^Message key /);
    }),
  );
});

Deno.test("decodeEvent() never throws on valid events with bytes flipped, inserted or cut", () => {
  const edit = fc.record({
    at: fc.nat(),
    kind: fc.constantFrom("flip", "insert", "delete", "truncate"),
    byte: fc.integer({ min: 0, max: 255 }),
  });
  checkProperty(
    fc.property(validEvent, fc.array(edit, { minLength: 1, maxLength: 4 }), ({ event }, edits) => {
      const bytes = [...new TextEncoder().encode(JSON.stringify(event))];
      for (const e of edits) {
        const i = e.at % (bytes.length + 1);
        if (e.kind === "flip" && i < bytes.length) bytes[i] = bytes[i]! ^ (e.byte || 1);
        else if (e.kind === "insert") bytes.splice(i, 0, e.byte);
        else if (e.kind === "delete") bytes.splice(i, 1);
        else if (e.kind === "truncate") bytes.length = i;
      }
      assertWellFormed(decodeEvent(Uint8Array.from(bytes), `${event.sensor_type}:${event.sensor_id}`));
    }),
    300,
  );
});

Deno.test("decodeEvent() with a future-skew limit refuses exactly the events stamped beyond it", () => {
  const now = Date.UTC(2026, 10, 25, 21, 0, 0);
  checkProperty(
    fc.property(validEvent, fc.integer({ min: 0, max: 3_600_000 }), ({ event, time }, skew) => {
      const r = decodeEvent(JSON.stringify(event), null, { maxFutureSkewMs: skew, now: () => now });
      if (time - now > skew) {
        assert.ok(!r.ok && r.reason === "future_timestamp" && r.error.startsWith('Field "timestamp"'));
      } else {
        assert.ok(r.ok);
      }
    }),
  );
});
