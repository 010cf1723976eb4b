import assert from "node:assert/strict";
import { decodeEvent, type InvalidReason } from "../../src/decode/decode.ts";
import { EVENT_LIMITS } from "../../src/decode/bounds.ts";

const good = {
  event_id: "e-1",
  sensor_id: "temp-001",
  sensor_type: "temperature",
  value: 22.5,
  unit: "°C",
  timestamp: "2026-11-25T21:00:00Z",
  location: "Building A, Floor 1",
  metadata: { firmware_version: "1.2.3", battery_level: 80, tags: ["a", "b"], site: { floor: 1 } },
};

function decode(obj: Record<string, unknown>) {
  return decodeEvent(new TextEncoder().encode(JSON.stringify(obj)), `temperature:${obj.sensor_id}`);
}

function refused(obj: Record<string, unknown>): { stage: string; reason: InvalidReason; error: string } {
  const r = decode(obj);
  assert.equal(r.ok, false, "expected a refusal");
  return r as { ok: false; stage: "validate"; reason: InvalidReason; error: string };
}

/** `{ a: { a: ... { a: 1 } } }` with `levels` objects. */
function nested(levels: number): Record<string, unknown> {
  let o: Record<string, unknown> = { a: 1 };
  for (let i = 1; i < levels; i++) o = { a: o };
  return o;
}

/** Nesting as text (an object of arrays, 2 bytes a level), deeper than JSON.stringify could write. */
function nestedText(levels: number): string {
  return `{"a":${"[".repeat(levels - 1)}1${"]".repeat(levels - 1)}}`;
}

Deno.test("decodeEvent() accepts every field at its length limit and metadata at its depth limit", () => {
  const L = EVENT_LIMITS;
  const r = decode({
    ...good,
    event_id: "e".repeat(L.eventIdChars),
    sensor_id: "s".repeat(L.sensorIdChars),
    unit: "u".repeat(L.unitChars),
    location: "l".repeat(L.locationChars),
    // The longest timestamp the contract takes: nine fraction digits and an offset (35 characters).
    timestamp: "2026-11-25T21:00:00.123456789+03:00",
    metadata: {
      ["k".repeat(L.metadataKeyChars)]: "v".repeat(L.metadataStringChars),
      deep: nested(L.metadataDepth - 1),
    },
  });
  assert.ok(r.ok, r.ok ? "" : r.error);
});

Deno.test("decodeEvent() refuses an over-long id, unit or location, naming the field", () => {
  const L = EVENT_LIMITS;
  const cases: [string, Record<string, unknown>][] = [
    ["event_id", { event_id: "e".repeat(L.eventIdChars + 1) }],
    ["sensor_id", { sensor_id: "s".repeat(L.sensorIdChars + 1) }],
    ["unit", { unit: "u".repeat(L.unitChars + 1) }],
    ["location", { location: "l".repeat(L.locationChars + 1) }],
  ];
  for (const [field, over] of cases) {
    const f = refused({ ...good, ...over });
    assert.equal(f.stage, "validate");
    assert.equal(f.reason, "field_too_long", field);
    assert.match(f.error, new RegExp(`^Field "${field}": \\d+ characters, at most \\d+ allowed$`));
  }
});

Deno.test("decodeEvent() refuses metadata nested deeper than the limit, naming the path", () => {
  const f = refused({ ...good, metadata: { deep: nested(EVENT_LIMITS.metadataDepth) } });
  assert.equal(f.reason, "metadata_too_deep");
  assert.match(f.error, /^Field "metadata\.deep\.a\.a.*": nested deeper than 16 levels/);
});

Deno.test("decodeEvent() refuses 100,000 levels of nesting in metadata without throwing", () => {
  const text = JSON.stringify({ ...good, metadata: "X" }).replace('"X"', nestedText(100_000));
  const r = decodeEvent(text, "temperature:temp-001");
  assert.equal(r.ok, false);
  assert.equal((r as { reason: string }).reason, "metadata_too_deep");
  assert.ok((r as { error: string }).error.length < 300, "the message does not spell out the whole path");
});

Deno.test("decodeEvent() refuses metadata with over-long keys or strings, too many entries or too many characters", () => {
  const L = EVENT_LIMITS;
  const many = Object.fromEntries(Array.from({ length: L.metadataEntries + 1 }, (_, i) => [`k${i}`, i]));
  const bulky = Object.fromEntries(
    Array.from({ length: Math.ceil(L.metadataChars / L.metadataStringChars) + 1 }, (_, i) => [
      `k${i}`,
      "v".repeat(L.metadataStringChars),
    ]),
  );
  const cases: [Record<string, unknown>, InvalidReason, RegExp][] = [
    [
      { ["k".repeat(L.metadataKeyChars + 1)]: 1 },
      "field_too_long",
      /^Field "metadata": key "k+…" has \d+ characters, at most 128 allowed$/,
    ],
    [
      { note: "v".repeat(L.metadataStringChars + 1) },
      "field_too_long",
      /^Field "metadata\.note": \d+ characters, at most \d+ allowed$/,
    ],
    [
      { list: ["ok", "v".repeat(L.metadataStringChars + 1)] },
      "field_too_long",
      /^Field "metadata\.list\.1": /,
    ],
    [many, "metadata_too_large", /^Field "metadata": more than \d+ entries$/],
    [
      { list: Array.from({ length: L.metadataEntries + 1 }, () => 0) },
      "metadata_too_large",
      /more than \d+ entries/,
    ],
    [bulky, "metadata_too_large", /^Field "metadata": more than \d+ characters of keys and strings$/],
  ];
  for (const [metadata, reason, pattern] of cases) {
    const f = refused({ ...good, metadata });
    assert.equal(f.stage, "validate");
    assert.equal(f.reason, reason);
    assert.match(f.error, pattern);
  }
});

Deno.test("decodeEvent() refuses a timestamp over its length limit, naming the field and not quoting it", () => {
  const L = EVENT_LIMITS;
  // The reviewer's case: 250,000 fraction digits, accepted before and carried in every alert it raised.
  for (
    const timestamp of [
      `2026-12-02T05:00:00.${"1".repeat(250_000)}Z`,
      `2026-12-02T05:00:00.${"1".repeat(45)}`,
    ]
  ) {
    const f = refused({ ...good, timestamp });
    assert.equal(f.stage, "validate");
    assert.equal(f.reason, "field_too_long");
    assert.equal(
      f.error,
      `Field "timestamp": ${timestamp.length} characters, at most ${L.timestampChars} allowed`,
    );
  }
});

Deno.test("decodeEvent() takes fractions of seconds up to nanoseconds and refuses longer ones, naming the field", () => {
  for (let digits = 1; digits <= EVENT_LIMITS.timestampFractionDigits; digits++) {
    for (const suffix of ["", "Z", "-05:30"]) {
      const timestamp = `2026-11-25T21:00:00.${"123456789".slice(0, digits)}${suffix}`;
      const r = decode({ ...good, timestamp });
      assert.ok(r.ok, `${timestamp}: ${r.ok ? "" : r.error}`);
    }
  }
  for (
    const timestamp of [
      "2026-11-25T21:00:00.1234567891",
      "2026-11-25T21:00:00.1234567891Z",
      "2026-11-25T21:00:00.000000000000+01:00",
    ]
  ) {
    const f = refused({ ...good, timestamp });
    assert.equal(f.stage, "validate");
    assert.equal(f.reason, "invalid_timestamp");
    const digits = /\.(\d+)/.exec(timestamp)![1]!.length;
    assert.equal(
      f.error,
      `Field "timestamp": a fraction of a second of ${digits} digits, at most 9 (nanoseconds) allowed`,
    );
  }
});

Deno.test("decodeEvent() refuses a control character in sensor_id or location, naming the field", () => {
  const cases: [string, Record<string, unknown>, string][] = [
    // A NUL in a sensor id broke the state changelog's keys: the sensor's episode was not restored.
    ["sensor_id", { sensor_id: "evil\u0000x" }, "U+0000 at index 4"],
    ["sensor_id", { sensor_id: "line\nforged" }, "U+000A at index 4"],
    ["sensor_id", { sensor_id: "\u001b[2J" }, "U+001B at index 0"],
    ["location", { location: "Hall\u007f7" }, "U+007F at index 4"],
    ["location", { location: "Hall\t7" }, "U+0009 at index 4"],
  ];
  for (const [field, bad, where] of cases) {
    const f = decodeEvent(JSON.stringify({ ...good, ...bad }), null);
    assert.equal(f.ok, false, field);
    if (f.ok) continue;
    assert.equal(f.stage, "validate");
    assert.equal(f.reason, "control_character", field);
    assert.equal(f.error, `Field "${field}": control character ${where}`);
  }
  // Characters past the C0 range and DEL are taken: units and names in any script, emoji, C1 controls.
  const r = decodeEvent(
    JSON.stringify({
      ...good,
      sensor_id: "t\u00e9mp-\u0080-\ud83c\udf21",
      location: "Salle \u00e0 c\u00f4t\u00e9 \u2028",
    }),
    null,
  );
  assert.ok(r.ok, r.ok ? "" : r.error);
});

Deno.test("decodeEvent() escapes a metadata key it names in an error, and cuts it", () => {
  const deep = refused({ ...good, metadata: { 'line\n"forged"': nested(EVENT_LIMITS.metadataDepth) } });
  assert.match(deep.error, /^Field "metadata\.line\\n\\"forged\\"\.a\.a/);
  const key = `\n${"k".repeat(EVENT_LIMITS.metadataKeyChars)}`;
  const long = refused({ ...good, metadata: { [key]: 1 } });
  assert.equal(
    long.error,
    `Field "metadata": key "\\n${"k".repeat(39)}…" has 129 characters, at most 128 allowed`,
  );
});
