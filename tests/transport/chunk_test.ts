/** Produce requests cut by UTF-8 bytes, and the reshaping of a request the broker refused for its size. */
import assert from "node:assert/strict";
import { chunkRecords, ChunkResizer, recordBytes, UnsendableRecordError } from "../../src/transport/kafka.ts";
import type { OutRecord } from "../../src/transport/output.ts";
import fc from "fast-check";
import { checkProperty } from "../helpers/property.ts";

const LIMIT = 512 * 1024;
const tooLarge = Object.assign(new Error("too large"), { type: "MESSAGE_TOO_LARGE" });
const rec = (value: string, topic = "t", key: string | null = "k"): OutRecord => ({ topic, key, value });
const bytes = (chunk: OutRecord[]) => chunk.reduce((n, r) => n + recordBytes(r), 0);

Deno.test("recordBytes counts UTF-8 bytes of key and value, not UTF-16 code units", () => {
  assert.equal(recordBytes(rec("abc", "t", null)), 3 + 64);
  assert.equal(recordBytes(rec("é", "t", "ü")), 2 + 2 + 64);
  // U+FFFD, what an invalid byte decodes to: 1 code unit, 3 bytes.
  assert.equal(recordBytes(rec("\uFFFD".repeat(10), "t", null)), 30 + 64);
  // A surrogate pair is one character of 4 bytes; a lone surrogate is written as U+FFFD (3 bytes).
  assert.equal(recordBytes(rec("😀", "t", null)), 4 + 64);
  assert.equal(recordBytes(rec("\ud800", "t", null)), 3 + 64);
  assert.equal(recordBytes({ topic: "t", key: null, value: null }), 64);
});

Deno.test("chunkRecords keeps each chunk under 512 KiB of UTF-8: DLQ records of replaced invalid bytes", () => {
  // The reviewer's records: 65,824 characters, 196,896 bytes each (the first chunk held 7).
  const value = "\uFFFD".repeat(65_632);
  const records = Array.from({ length: 10 }, () => rec(value, "dlq", "temperature:temp-junk"));
  assert.equal(value.length * 3, 196_896);
  const chunks = chunkRecords(records);
  assert.deepEqual(chunks.map((c) => c.length), [2, 2, 2, 2, 2]);
  for (const c of chunks) assert.ok(bytes(c) <= LIMIT, `${bytes(c)} bytes`);
  assert.deepEqual(chunks.flat(), records, "every record, in order");
});

Deno.test("chunkRecords counts two-byte characters as two bytes", () => {
  // 100,000 characters, 200,000 bytes: three made 300,192 characters, 600,192 bytes.
  const records = Array.from({ length: 3 }, (_, i) => rec("é".repeat(100_000), "t", `k${i}`));
  const chunks = chunkRecords(records);
  assert.deepEqual(chunks.map((c) => c.length), [2, 1]);
  // ASCII is as long in bytes as in characters: the same count as before.
  assert.deepEqual(
    chunkRecords(Array.from({ length: 3 }, () => rec("e".repeat(200_000)))).map((c) => c.length),
    [2, 1],
  );
});

Deno.test("chunkRecords puts a record over the limit in a chunk of its own, in order", () => {
  const small = (i: number) => rec(`v${i}`);
  const big = rec("é".repeat(LIMIT));
  const chunks = chunkRecords([small(1), small(2), big, small(3)]);
  assert.deepEqual(chunks, [[small(1), small(2)], [big], [small(3)]]);
  assert.deepEqual(chunkRecords([]), []);
});

Deno.test("ChunkResizer splits a refused chunk by topic, then in halves, in order", () => {
  const a = [rec("a1", "alerts"), rec("a2", "alerts"), rec("a3", "alerts")];
  const d = [rec("d1", "dlq"), rec("d2", "dlq")];
  const chunks = [[a[0]!, d[0]!, a[1]!, d[1]!, a[2]!], [rec("next")]];
  const resizer = new ChunkResizer();
  resizer.resize(chunks, 0, tooLarge);
  assert.deepEqual(chunks, [a, d, [rec("next")]]);
  resizer.resize(chunks, 0, tooLarge);
  assert.deepEqual(chunks, [[a[0]!, a[1]!], [a[2]!], d, [rec("next")]]);
  assert.equal(resizer.split, 2);
});

Deno.test("ChunkResizer replaces a single refused record, at most twice along its chain, then gives up", () => {
  const original = rec("x".repeat(100), "alerts", "big");
  const seen: string[] = [];
  // Every replacement refused in turn: the chain ends after MAX_REPLACEMENTS.
  const resizer = new ChunkResizer((r, problem) => {
    seen.push(`${r.topic} ${problem}`);
    return rec(`stand-in ${seen.length}`, "dlq", r.key);
  });
  const chunks = [[original]];
  resizer.resize(chunks, 0, tooLarge);
  assert.deepEqual(chunks, [[rec("stand-in 1", "dlq", "big")]]);
  resizer.resize(chunks, 0, tooLarge);
  assert.deepEqual(chunks, [[rec("stand-in 2", "dlq", "big")]]);
  assert.equal(resizer.origin(chunks[0]![0]!), original, "a stand-in answers for the caller's record");
  const last = chunks[0]![0]!;
  assert.throws(
    () => resizer.resize(chunks, 0, tooLarge),
    (e: unknown) =>
      e instanceof UnsendableRecordError && e.record === last &&
      /^A record of 77 bytes for topic "dlq" \(key "big"\) was refused on its own \(MESSAGE_TOO_LARGE: 77 bytes\)/
        .test(e.message),
  );
  assert.deepEqual(chunks, [[]], "dropped: the caller fails the sends that held it");
  assert.deepEqual(seen, ["alerts MESSAGE_TOO_LARGE: 167 bytes", "dlq MESSAGE_TOO_LARGE: 77 bytes"]);
  assert.equal(resizer.replaced, 2);
});

Deno.test("ChunkResizer without a stand-in (or one returning null) fails the record", () => {
  const r = rec("v", "alerts", null);
  assert.throws(() => new ChunkResizer().resize([[r]], 0, tooLarge), UnsendableRecordError);
  assert.throws(() => new ChunkResizer(() => null).resize([[r]], 0, tooLarge), /key null/);
});

/** Every record measured: the chunks chunkRecords must make, measuring only near the limit. */
function measuringEach(records: readonly OutRecord[], maxBytes: number): OutRecord[][] {
  const chunks: OutRecord[][] = [];
  let chunk: OutRecord[] = [];
  let size = 0;
  for (const r of records) {
    const n = recordBytes(r);
    if (chunk.length > 0 && size + n > maxBytes) {
      chunks.push(chunk);
      chunk = [];
      size = 0;
    }
    chunk.push(r);
    size += n;
  }
  if (chunk.length > 0) chunks.push(chunk);
  return chunks;
}

Deno.test("chunkRecords makes the chunks of measuring every record (property)", () => {
  const text = fc.oneof(
    fc.string({ maxLength: 300 }),
    fc.string({ unit: "binary", maxLength: 300 }),
    fc.constantFrom("", "é".repeat(200), "\uFFFD".repeat(400), "😀".repeat(100), "\ud800x"),
  );
  const record = fc.record({ topic: fc.constant("t"), key: fc.option(text), value: fc.option(text) });
  checkProperty(
    fc.property(fc.array(record, { maxLength: 60 }), fc.integer({ min: 64, max: 6_000 }), (records, max) => {
      assert.deepEqual(chunkRecords(records, max), measuringEach(records, max));
    }),
  );
});
