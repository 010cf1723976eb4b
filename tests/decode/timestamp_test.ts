/**
 * parseIsoTimestamp() replaces the zod pattern and `Date.parse` on the hot path. Differential test:
 * a string is read exactly when `Timestamp` accepts it, and then to what `Date.parse` gives (with `Z`
 * added when there is no offset, as the contract says).
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { Timestamp } from "../../src/contract/schemas.ts";
import { parseIsoTimestamp } from "../../src/decode/timestamp.ts";
import { checkProperty } from "../helpers/property.ts";
import { timestampText } from "./_timestamps.ts";

function reference(ts: string): number {
  if (!Timestamp.safeParse(ts).success) return NaN;
  return Date.parse(/(?:Z|[+-]\d\d:\d\d)$/.test(ts) ? ts : `${ts}Z`);
}

Deno.test("parseIsoTimestamp() agrees with the zod pattern and Date.parse on generated timestamps", () => {
  checkProperty(
    fc.property(timestampText, (ts) => {
      assert.ok(Object.is(parseIsoTimestamp(ts), reference(ts)), ts);
    }),
    20_000,
  );
});

Deno.test("parseIsoTimestamp() reads the documented forms and refuses near misses", () => {
  const cases: [string, number][] = [
    ["2026-11-25T21:00:00.123456", Date.UTC(2026, 10, 25, 21, 0, 0, 123)],
    ["2026-11-25T21:00", Date.UTC(2026, 10, 25, 21, 0)],
    ["2026-11-25T21:00:00Z", Date.UTC(2026, 10, 25, 21, 0)],
    ["2026-11-25T21:00:00+03:00", Date.UTC(2026, 10, 25, 18, 0)],
    ["2024-02-29T00:00:00.9999Z", Date.UTC(2024, 1, 29, 0, 0, 0, 999)],
    ["0000-01-01T00:00", Date.parse("0000-01-01T00:00Z")],
  ];
  for (const [ts, expected] of cases) assert.equal(parseIsoTimestamp(ts), expected, ts);
  for (
    const ts of [
      "2023-02-29T00:00:00Z",
      "2026-11-25T21:00Z",
      "2026-11-25t21:00:00Z",
      "2026-11-25T21:00:00z",
      "2026-11-25T24:00:00Z",
      "2026-11-25T21:00:00.Z",
      "2026-11-25T21:00:00+0300",
      "2026-11-25 21:00:00",
      "+02026-11-25T21:00:00Z",
    ]
  ) {
    assert.ok(Number.isNaN(parseIsoTimestamp(ts)), ts);
    assert.ok(Number.isNaN(reference(ts)), ts);
  }
});

Deno.test("parseIsoTimestamp() gives each timestamp its own time when the same ones come again in any order", () => {
  const a = "2026-11-25T21:00:00.123Z";
  const b = "2026-11-25T21:00:00.124Z";
  const sequence = [a, a, b, a, "", "2026-11-25T21:00:00.12Z", "", b, "2026-13-01T00:00Z", a];
  for (const ts of sequence) assert.ok(Object.is(parseIsoTimestamp(ts), reference(ts)), `"${ts}"`);
});
