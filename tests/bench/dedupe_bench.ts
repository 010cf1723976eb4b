import { DuplicateFilter } from "../../src/decode/dedupe.ts";

// Ids as a stream carries them: all new, so every call past the capacity evicts the oldest.
const ids = Array.from({ length: 400_000 }, (_, i) => `run-${i}`);
const filter = new DuplicateFilter(100_000);
let i = 0;

Deno.bench("DuplicateFilter.seen(): a new id, at capacity (evicts the oldest)", () => {
  filter.seen(ids[i++ % ids.length]!);
});
