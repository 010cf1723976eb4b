import assert from "node:assert/strict";
import { Backoff } from "../../src/transport/backoff.ts";

Deno.test("Backoff doubles its delay up to the cap", () => {
  const b = new Backoff({ initialMs: 1000, maxMs: 30_000, now: () => 0 });
  const delays = Array.from({ length: 8 }, () => b.next());
  assert.deepEqual(delays, [1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000]);
});

Deno.test("Backoff starts over after a healthy period, not after a short one", () => {
  let now = 0;
  const b = new Backoff({ initialMs: 1000, maxMs: 30_000, healthyMs: 60_000, now: () => now });
  for (let i = 0; i < 6; i++) b.next();
  b.healthy();
  now += 59_999;
  assert.equal(b.next(), 30_000, "59.999 s of health is not enough");
  b.healthy();
  now += 60_000;
  assert.equal(b.next(), 1000);
  assert.equal(b.next(), 2000);
});

Deno.test("Backoff counts a healthy period from its first healthy() call", () => {
  let now = 0;
  const b = new Backoff({ initialMs: 1000, healthyMs: 60_000, now: () => now });
  b.next();
  b.next();
  b.healthy();
  now += 40_000;
  b.healthy();
  now += 20_000;
  assert.equal(b.next(), 1000);
});
