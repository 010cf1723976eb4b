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
