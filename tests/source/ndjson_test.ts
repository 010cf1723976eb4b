import assert from "node:assert/strict";
import { readNdjson } from "../../src/source/ndjson.ts";

Deno.test("readNdjson() yields one record per non-blank line, numbered, bytes untouched", async () => {
  const path = await Deno.makeTempFile();
  try {
    const bytes = new Uint8Array([
      ...new TextEncoder().encode('{"a":1}\r\n\n   \n'),
      0xff,
      0xfe,
      0x0a,
      ...new TextEncoder().encode('{"b":2}'),
    ]);
    await Deno.writeFile(path, bytes);
    const batches = [];
    for await (const b of readNdjson(path, 2)) batches.push(b);
    const records = batches.flat();
    assert.deepEqual(records.map((r) => r.offset), ["1", "4", "5"]);
    assert.equal(new TextDecoder().decode(records[0]!.value as Uint8Array), '{"a":1}');
    assert.deepEqual([...(records[1]!.value as Uint8Array)], [0xff, 0xfe]);
    assert.equal(
      new TextDecoder().decode(records[2]!.value as Uint8Array),
      '{"b":2}',
      "a last line without newline",
    );
    assert.equal(records[0]!.topic, `file:${path}`);
  } finally {
    await Deno.remove(path);
  }
});

async function readAll(path: string, batchSize: number, maxLineBytes?: number) {
  const records = [];
  for await (const b of readNdjson(path, batchSize, maxLineBytes)) records.push(...b);
  return records;
}

Deno.test("readNdjson() joins a line that spans many reads, byte for byte", async () => {
  const path = await Deno.makeTempFile();
  try {
    // Far more than one read of the file's stream (64 KiB), under the line limit.
    const long = Uint8Array.from({ length: 200_000 }, (_, i) => 0x61 + (i % 26));
    await Deno.writeFile(path, new Uint8Array([...long, 0x0d, 0x0a, 0x7b, 0x7d, 0x0a]));
    const records = await readAll(path, 10);
    assert.equal(records.length, 2);
    assert.deepEqual(records[0]!.value, long, "the CR of a CRLF is left out");
    assert.equal(records[0]!.size, undefined, "a line within the limit is whole");
    assert.deepEqual(records[1]!.value, new Uint8Array([0x7b, 0x7d]));
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("readNdjson() yields an over-long line as one record cut to the limit, with its size, and reads on", async () => {
  const path = await Deno.makeTempFile();
  try {
    const limit = 64 * 1024;
    const file = await Deno.open(path, { write: true });
    const enc = new TextEncoder();
    await file.write(enc.encode('{"first":1}\n'));
    // 20 MB without a newline, written in pieces: the reader must not hold it.
    const piece = enc.encode("x".repeat(1024 * 1024));
    for (let i = 0; i < 20; i++) await file.write(piece);
    await file.write(enc.encode('\n{"last":1}'));
    file.close();
    const records = await readAll(path, 500, limit);
    assert.deepEqual(records.map((r) => r.offset), ["1", "2", "3"]);
    const long = records[1]!;
    assert.equal(long.size, 20 * 1024 * 1024);
    assert.equal((long.value as Uint8Array).byteLength, limit, "only the limit's worth is kept");
    assert.equal(new TextDecoder().decode(records[2]!.value as Uint8Array), '{"last":1}');
  } finally {
    await Deno.remove(path);
  }
});
