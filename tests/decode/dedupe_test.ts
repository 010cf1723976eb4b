import assert from "node:assert/strict";
import fc from "fast-check";
import { DuplicateFilter } from "../../src/decode/dedupe.ts";

Deno.test("DuplicateFilter reports an id seen before and counts it", () => {
  const f = new DuplicateFilter(10);
  assert.equal(f.seen("a"), false);
  assert.equal(f.seen("b"), false);
  assert.equal(f.seen("a"), true);
  assert.equal(f.duplicates, 1);
});

Deno.test("DuplicateFilter forgets the oldest ids beyond its capacity", () => {
  const f = new DuplicateFilter(3);
  for (const id of ["a", "b", "c", "d"]) assert.equal(f.seen(id), false);
  assert.equal(f.size, 3);
  assert.equal(f.seen("a"), false, "a was evicted");
  assert.equal(f.seen("d"), true);
});

Deno.test("DuplicateFilter refuses a capacity that is not a positive integer", () => {
  assert.throws(() => new DuplicateFilter(0), RangeError);
});

Deno.test("DuplicateFilter answers like a list of the newest distinct ids, whatever the sequence", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 8 }),
      fc.array(fc.integer({ min: 0, max: 12 }), { maxLength: 200 }),
      (capacity, stream) => {
        const f = new DuplicateFilter(capacity);
        const kept: string[] = [];
        for (const n of stream) {
          const id = `id-${n}`;
          const expected = kept.includes(id);
          if (!expected) {
            kept.push(id);
            if (kept.length > capacity) kept.shift();
          }
          assert.equal(f.seen(id), expected, `${id} after ${kept.join(",")}`);
        }
        assert.equal(f.size, kept.length);
        assert.deepEqual(f.recent(capacity), kept);
      },
    ),
  );
});
