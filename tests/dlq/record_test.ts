/** The DLQ record's original value, cut in UTF-8 bytes, and what stands for a record too large for the broker. */
import assert from "node:assert/strict";
import { DlqRecord } from "../../src/contract/schemas.ts";
import { buildDlqRecord, MAX_ORIGINAL_VALUE_BYTES, shrinkForDlq } from "../../src/dlq/record.ts";

const utf8 = (s: string) => new TextEncoder().encode(s).byteLength;
const base = { topic: "events", key: "k", partition: 0, offset: "7", stage: "decode" as const, error: "bad" };

Deno.test("buildDlqRecord keeps at most 64 KiB of UTF-8 of invalid bytes, each replaced by U+FFFD (3 bytes)", () => {
  const d = buildDlqRecord({ ...base, value: new Uint8Array(100_000).fill(0xff) });
  // 21,845 whole characters of 3 bytes: 65,535 bytes (it kept 65,536 characters, 196,608 bytes).
  assert.equal(d.original_value, "\uFFFD".repeat(21_845));
  assert.equal(d.original_value_truncated, true);
  assert.equal(d.original_size, 100_000);
});

Deno.test("buildDlqRecord cuts between characters: no half of a surrogate pair or of a UTF-8 sequence", () => {
  const value = "a" + "😀".repeat(20_000); // 80,001 bytes
  const d = buildDlqRecord({ ...base, value });
  assert.equal(d.original_value, "a" + "😀".repeat(16_383));
  assert.ok(utf8(d.original_value!) <= MAX_ORIGINAL_VALUE_BYTES);
  assert.equal(d.original_size, 80_001, "the size in bytes, not characters");
  // The same as bytes: a 4-byte sequence cut at the end of what is decoded is not kept half.
  const fromBytes = buildDlqRecord({ ...base, value: new TextEncoder().encode(value) });
  assert.equal(fromBytes.original_value, d.original_value);
  assert.equal(fromBytes.original_size, 80_001);
});

Deno.test("buildDlqRecord keeps a value of exactly 64 KiB whole, and says nothing of a cut", () => {
  const value = "é".repeat(MAX_ORIGINAL_VALUE_BYTES / 2);
  const d = buildDlqRecord({ ...base, value: new TextEncoder().encode(value) });
  assert.equal(d.original_value, value);
  assert.equal(d.original_value_truncated, undefined);
  assert.equal(buildDlqRecord({ ...base, value: value + "é" }).original_value_truncated, true);
});

Deno.test("shrinkForDlq drops a DLQ record's original value, keeping its size and reason, once", () => {
  const shrink = shrinkForDlq("dlq");
  const dlq = buildDlqRecord({ ...base, value: "x".repeat(1000) });
  const shrunk = shrink(
    { topic: "dlq", key: "k", value: JSON.stringify(dlq) },
    "MESSAGE_TOO_LARGE: 1200 bytes",
  )!;
  const parsed = DlqRecord.parse(JSON.parse(shrunk.value!));
  assert.equal(shrunk.key, "k");
  assert.equal(parsed.original_value, null);
  assert.equal(parsed.original_value_truncated, true);
  assert.equal(parsed.original_size, 1000);
  assert.equal(parsed.error, "bad");
  assert.equal(parsed.original_offset, "7");
  assert.equal(
    parsed.original_value_dropped,
    "The broker refused the record as too large (MESSAGE_TOO_LARGE: 1200 bytes)",
  );
  // Nothing left to drop: nothing smaller stands for it.
  assert.equal(shrink(shrunk, "MESSAGE_TOO_LARGE: 300 bytes"), null);
});

Deno.test("shrinkForDlq puts another topic's record in the DLQ with stage alert and the reason", () => {
  const shrink = shrinkForDlq("dlq");
  const stand = shrink(
    { topic: "alerts", key: "temperature:t1", value: '{"a":1}', partition: 2 },
    "MESSAGE_TOO_LARGE: 80 bytes",
  )!;
  assert.equal(stand.topic, "dlq");
  assert.equal(stand.key, "temperature:t1");
  const d = DlqRecord.parse(JSON.parse(stand.value!));
  assert.equal(d.original_topic, "alerts");
  assert.equal(d.original_value, '{"a":1}');
  assert.equal(d.original_partition, 2);
  assert.equal(d.stage, "alert");
  assert.equal(d.error, "The broker refused the record as too large (MESSAGE_TOO_LARGE: 80 bytes)");
});
