import assert from "node:assert/strict";
import { EVENT_LIMITS } from "../../src/decode/bounds.ts";
import { decodeEvent, parseTimestamp } from "../../src/decode/decode.ts";

const good = {
  event_id: "e-1",
  sensor_id: "temp-001",
  sensor_type: "temperature",
  value: 22.5,
  unit: "°C",
  timestamp: "2026-11-25T21:00:00Z",
  location: "Building A, Floor 1",
  metadata: { firmware_version: "1.2.3", battery_level: 80 },
};
const KEY = "temperature:temp-001";

function decode(obj: unknown, key: string | null = KEY) {
  return decodeEvent(new TextEncoder().encode(JSON.stringify(obj)), key);
}

function failure(obj: unknown, key: string | null = KEY) {
  const r = decode(obj, key);
  assert.equal(r.ok, false, `expected a failure for ${JSON.stringify(obj)}`);
  return r as { ok: false; stage: string; error: string };
}

Deno.test("decodeEvent() accepts a contract event and precomputes time and key", () => {
  const r = decode(good);
  assert.ok(r.ok);
  assert.equal(r.value.time, Date.UTC(2026, 10, 25, 21, 0, 0));
  assert.equal(r.value.key, KEY);
  assert.equal(r.value.event.schema_version, 1);
});

Deno.test("decodeEvent() reads every timestamp form of the contract", () => {
  const cases: [string, number][] = [
    ["2026-11-25T21:00:00.123456", Date.UTC(2026, 10, 25, 21, 0, 0, 123)],
    ["2026-11-25T21:00:00Z", Date.UTC(2026, 10, 25, 21, 0, 0)],
    ["2026-11-25T21:00:00.5+03:00", Date.UTC(2026, 10, 25, 18, 0, 0, 500)],
    ["2026-11-25T21:00:00", Date.UTC(2026, 10, 25, 21, 0, 0)],
    ["2026-11-25T21:00:00.1-05:30", Date.UTC(2026, 10, 26, 2, 30, 0, 100)],
  ];
  for (const [timestamp, expected] of cases) {
    const r = decode({ ...good, timestamp });
    assert.ok(r.ok, `${timestamp} should be accepted`);
    assert.equal(r.value.time, expected, timestamp);
    assert.equal(parseTimestamp(timestamp), expected);
  }
});

Deno.test("decodeEvent() refuses timestamps that are not ISO 8601 date-times", () => {
  for (const timestamp of ["2026-11-25", "yesterday", "2026-13-01T00:00:00Z", "1732568400", ""]) {
    const f = failure({ ...good, timestamp });
    assert.equal(f.stage, "validate");
    assert.match(f.error, /"timestamp"/);
  }
});

Deno.test("decodeEvent() names the field of every wrong type", () => {
  const cases: [string, unknown][] = [
    ["event_id", 5],
    ["sensor_id", null],
    ["sensor_type", "radiation"],
    ["value", "22.5"],
    ["value", null],
    ["value", true],
    ["unit", 3],
    ["location", 7],
    ["metadata", "x"],
    ["metadata", [1]],
    ["schema_version", 1.5],
    ["schema_version", "1"],
  ];
  for (const [field, v] of cases) {
    const f = failure({ ...good, [field]: v });
    assert.equal(f.stage, "validate");
    assert.match(f.error, new RegExp(`"${field}"`), `${field}=${JSON.stringify(v)}: ${f.error}`);
  }
});

Deno.test("decodeEvent() names every missing required field", () => {
  for (const field of ["event_id", "sensor_id", "sensor_type", "value", "unit", "timestamp"]) {
    const { [field]: _, ...rest } = good as Record<string, unknown>;
    assert.match(failure(rest).error, new RegExp(`"${field}"`));
  }
});

Deno.test("decodeEvent() applies the defaults of optional fields and ignores extra ones", () => {
  const { location: _l, metadata: _m, ...minimal } = good;
  const r = decode({ ...minimal, firmware: "x", extra: { a: 1 } });
  assert.ok(r.ok);
  assert.deepEqual(r.value.event.metadata, {});
  assert.equal(r.value.event.location, undefined);
  assert.equal("extra" in r.value.event, false);
  const nullLocation = decode({ ...good, location: null });
  assert.ok(nullLocation.ok);
  assert.equal(nullLocation.value.event.location, null);
});

Deno.test("decodeEvent() refuses empty ids and non-finite numbers", () => {
  assert.match(failure({ ...good, event_id: "" }).error, /"event_id"/);
  assert.match(failure({ ...good, sensor_id: "" }).error, /"sensor_id"/);
  // JSON has no NaN or Infinity literals; 1e999 parses to Infinity.
  const inf = decodeEvent(
    new TextEncoder().encode(JSON.stringify(good).replace('"value":22.5', '"value":1e999')),
    KEY,
  );
  assert.equal(inf.ok, false);
  assert.match((inf as { error: string }).error, /"value"/);
  const nan = decodeEvent(JSON.stringify(good).replace('"value":22.5', '"value":NaN'), KEY);
  assert.equal(nan.ok, false);
  assert.equal((nan as { stage: string }).stage, "decode");
});

Deno.test("decodeEvent() refuses an unknown schema_version", () => {
  const f = failure({ ...good, schema_version: 2 });
  assert.equal(f.stage, "validate");
  assert.match(f.error, /"schema_version".*2 is not supported/);
});

Deno.test("decodeEvent() refuses null, non-UTF-8, non-JSON, non-object and oversized values", () => {
  const cases: [Uint8Array | string | null, string, RegExp][] = [
    [null, "decode", /null/],
    [new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]), "decode", /UTF-8/],
    ["{not json", "decode", /not valid JSON/],
    ["", "decode", /not valid JSON/],
    ["[1,2]", "validate", /an array/],
    ["42", "validate", /number/],
    ["null", "validate", /null/],
    [JSON.stringify({ ...good, unit: "x".repeat(2 * 1024 * 1024) }), "decode", /exceeds the limit/],
  ];
  for (const [value, stage, pattern] of cases) {
    const r = decodeEvent(value, KEY);
    assert.equal(r.ok, false);
    assert.equal((r as { stage: string }).stage, stage);
    assert.match((r as { error: string }).error, pattern);
  }
});

Deno.test("decodeEvent() accepts long strings within the field limits", () => {
  const r = decode({ ...good, location: "L".repeat(EVENT_LIMITS.locationChars) });
  assert.ok(r.ok);
});

Deno.test("decodeEvent() checks the message key against sensor_type:sensor_id", () => {
  const f = failure(good, "humidity:temp-001");
  assert.equal(f.stage, "validate");
  assert.match(f.error, /key "humidity:temp-001" does not match.*"temperature:temp-001"/);
  assert.ok(decode(good, null).ok, "a keyless message is accepted unless a key is required");
  const required = decodeEvent(JSON.stringify(good), null, { requireKey: true });
  assert.equal(required.ok, false);
});

Deno.test("decodeEvent() refuses a timestamp further ahead of the wall clock than maxFutureSkewMs", () => {
  const now = Date.UTC(2026, 10, 25, 21, 0, 0);
  const at = (offsetMs: number) =>
    decodeEvent(JSON.stringify({ ...good, timestamp: new Date(now + offsetMs).toISOString() }), KEY, {
      maxFutureSkewMs: 300_000,
      now: () => now,
    });
  assert.ok(at(0).ok, "now");
  assert.ok(at(-86_400_000).ok, "a day old");
  assert.ok(at(300_000).ok, "exactly at the limit");
  const ahead = at(300_001 + 3_600_000);
  assert.ok(!ahead.ok);
  assert.equal(ahead.stage, "validate");
  assert.equal(ahead.reason, "future_timestamp");
  assert.equal(
    ahead.error,
    'Field "timestamp": "2026-11-25T22:05:00.001Z" is 3900 s ahead of the wall clock (at most 300 s allowed)',
  );
});

Deno.test("decodeEvent() compares a timestamp with an offset by its instant, not its wall-clock digits", () => {
  const now = Date.UTC(2026, 10, 25, 21, 0, 0);
  const opts = { maxFutureSkewMs: 60_000, now: () => now };
  // 23:30 at +03:00 is 20:30 UTC: in the past.
  assert.ok(decodeEvent(JSON.stringify({ ...good, timestamp: "2026-11-25T23:30:00+03:00" }), KEY, opts).ok);
  // 21:30 without an offset is UTC: half an hour ahead.
  assert.ok(!decodeEvent(JSON.stringify({ ...good, timestamp: "2026-11-25T21:30:00" }), KEY, opts).ok);
});

Deno.test("decodeEvent() accepts any future timestamp without maxFutureSkewMs", () => {
  assert.ok(decode({ ...good, timestamp: "2099-01-01T00:00:00Z" }).ok);
});

Deno.test("decodeEvent() quotes at most 100 characters of a value it refuses, escaped, in the error", () => {
  // The message key is not bounded by the event's limits: only by the broker's record size.
  const longKey = `temperature:${"k".repeat(100_000)}`;
  const mismatch = failure(good, longKey);
  assert.equal(
    mismatch.error,
    `Message key "${longKey.slice(0, 100)}…" does not match "<sensor_type>:<sensor_id>" ("${KEY}")`,
  );
  const controls = failure(good, "temperature:a\nforged");
  assert.match(controls.error, /^Message key "temperature:a\\nforged" does not match/);
  // A 250,000-digit timestamp stamped in the future: the error (and the warning log line that carries it)
  // quoted all of it, 250 KB a line.
  const timestamp = `2099-12-02T05:00:00.${"1".repeat(250_000)}Z`;
  const future = decodeEvent(JSON.stringify({ ...good, timestamp }), KEY, { maxFutureSkewMs: 300_000 });
  assert.equal(future.ok, false);
  assert.ok(!future.ok && future.error.length <= 200, !future.ok ? future.error.slice(0, 300) : "");
});

Deno.test("decodeEvent() names the quoted timestamp, escaped, in a future_timestamp error", () => {
  const now = Date.UTC(2026, 10, 25, 21, 0, 0);
  const r = decodeEvent(JSON.stringify({ ...good, timestamp: "2026-11-25T23:00:00.123456789" }), KEY, {
    maxFutureSkewMs: 300_000,
    now: () => now,
  });
  assert.ok(!r.ok);
  assert.equal(
    r.error,
    'Field "timestamp": "2026-11-25T23:00:00.123456789" is 7200 s ahead of the wall clock (at most 300 s allowed)',
  );
});
