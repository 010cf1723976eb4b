import assert from "node:assert/strict";
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
