/**
 * validateSensorEvent() stands in for `SensorEvent.safeParse` on the hot path. Differential tests:
 * generated valid events, mutated events and arbitrary JSON get the same verdict and the same output
 * (fields, values and field order) from both.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { SENSOR_TYPES, SensorEvent } from "../../src/contract/schemas.ts";
import { validateSensorEvent } from "../../src/decode/validate.ts";
import { checkProperty } from "../helpers/property.ts";
import { timestampText } from "./_timestamps.ts";

const FIELDS = [
  "event_id",
  "sensor_id",
  "sensor_type",
  "value",
  "unit",
  "timestamp",
  "location",
  "metadata",
  "schema_version",
];

const validEvent = fc.record({
  event_id: fc.string({ minLength: 1 }),
  sensor_id: fc.string({ minLength: 1 }),
  sensor_type: fc.constantFrom(...SENSOR_TYPES),
  value: fc.double({ noNaN: true, noDefaultInfinity: true }),
  unit: fc.string(),
  timestamp: timestampText,
  location: fc.option(fc.string(), { nil: undefined }).chain((l) =>
    fc.constantFrom(l, null as string | null | undefined)
  ),
  metadata: fc.option(fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 2 })), { nil: undefined }),
  schema_version: fc.option(fc.integer(), { nil: undefined }),
}, { requiredKeys: ["event_id", "sensor_id", "sensor_type", "value", "unit", "timestamp"] });

/** A field's value replaced by one of the near misses zod has to refuse (or quietly accept). */
const nearMiss = fc.oneof(
  fc.constantFrom(
    "",
    null,
    0,
    -0,
    1.5,
    2 ** 53,
    -(2 ** 53) + 1,
    "1",
    true,
    [],
    {},
    { "__proto__": { a: 1 }, b: 2 },
    { "constructor": "x" },
    "temperature",
    "2026-02-29T00:00:00Z",
  ),
  fc.jsonValue({ maxDepth: 2 }),
);

/** As it arrives on the wire: through JSON text (which also turns -0 into 0, as JSON.parse would). */
const wire = (o: unknown) => JSON.parse(JSON.stringify(o)) as unknown;

function assertSameAsZod(input: unknown): void {
  if (input === null || typeof input !== "object" || Array.isArray(input)) return;
  const fast = validateSensorEvent(input as Record<string, unknown>);
  const zod = SensorEvent.safeParse(input);
  assert.equal(fast !== null, zod.success, `verdict for ${JSON.stringify(input)}`);
  if (fast !== null && zod.success) {
    assert.deepStrictEqual(fast, zod.data);
    assert.equal(JSON.stringify(fast), JSON.stringify(zod.data));
  }
}

Deno.test("validateSensorEvent() agrees with zod on generated valid events", () => {
  checkProperty(fc.property(validEvent, (e) => assertSameAsZod(wire(e))), 2000);
});

Deno.test("validateSensorEvent() agrees with zod on mutated events", () => {
  checkProperty(
    fc.property(
      validEvent,
      fc.array(fc.tuple(fc.constantFrom(...FIELDS, "extra"), fc.option(nearMiss)), {
        minLength: 1,
        maxLength: 3,
      }),
      (e, mutations) => {
        const m = wire(e) as Record<string, unknown>;
        for (const [field, v] of mutations) {
          if (v === null) delete m[field];
          else m[field] = v;
        }
        assertSameAsZod(wire(m));
      },
    ),
    2000,
  );
});

Deno.test("validateSensorEvent() agrees with zod on arbitrary JSON objects", () => {
  checkProperty(
    fc.property(
      fc.oneof(
        fc.jsonValue(),
        fc.dictionary(fc.constantFrom(...FIELDS, "__proto__"), fc.jsonValue({ maxDepth: 2 })),
      ),
      (j) => assertSameAsZod(wire(j)),
    ),
    2000,
  );
});

Deno.test("validateSensorEvent() handles JSON's own corner cases as zod does", () => {
  const base =
    '"event_id":"e","sensor_id":"s","sensor_type":"co2","value":1,"unit":"","timestamp":"2026-01-01T00:00"';
  for (
    const text of [
      `{${base}}`,
      `{${base},"value":1e999}`,
      `{${base},"value":-0,"schema_version":-0}`,
      `{${base},"schema_version":9007199254740992}`,
      `{${base},"metadata":{"__proto__":{"x":1},"1":2,"a":3}}`,
      `{${base},"__proto__":{"location":"x"}}`,
      `{${base},"location":null,"metadata":null}`,
    ]
  ) {
    assertSameAsZod(JSON.parse(text));
  }
});
