import assert from "node:assert/strict";
import { fingerprint } from "../../src/rules/compile.ts";

Deno.test("fingerprint() is the FNV-1a 64 of the UTF-8 bytes, so changelogs already written still match", () => {
  // The reference vectors of FNV-1a 64, and one non-ASCII text as the previous version fingerprinted it.
  assert.equal(fingerprint(""), "cbf29ce484222325");
  assert.equal(fingerprint("a"), "af63dc4c8601ec8c");
  assert.equal(fingerprint("foobar"), "85944171f73967e8");
  assert.equal(fingerprint("°C co2 ≥ 1000 ✓"), "35351c35506fde26");
});
