import assert from "node:assert/strict";
import type { InputRecord } from "../../src/contract/records.ts";
import { TakenOn } from "../../src/notifiers/taken.ts";

const records = (partition: number, from: number, to: number): InputRecord[] =>
  Array.from({ length: to - from + 1 }, (_, i) => ({
    topic: "alerts",
    partition,
    offset: String(from + i),
    key: null,
    value: null,
  }));

const offsets = (rs: InputRecord[]) => rs.map((r) => Number(r.offset));

function deferred() {
  let resolve!: () => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

const tick = () => new Promise((r) => setTimeout(r, 0));

Deno.test("TakenOn.split() hands on only records not handed on yet, and waits for those still under way", async () => {
  const taken = new TakenOn();
  const first = deferred();
  const second = deferred();
  taken.add(0, 0n, 4n, first.promise);
  taken.add(0, 5n, 9n, second.promise);
  second.resolve();
  await tick();
  // Read again from offset 2 after a rejoin: 2..4 wait for the first batch, 5..9 were delivered.
  const { fresh, pending } = taken.split(0, records(0, 2, 12));
  assert.deepEqual(offsets(fresh), [10, 11, 12]);
  assert.deepEqual(pending, [first.promise]);
  first.resolve();
});

Deno.test("TakenOn.split() hands on every record of a partition it does not know", () => {
  const taken = new TakenOn();
  taken.add(0, 0n, 4n, new Promise(() => {}));
  const { fresh, pending } = taken.split(1, records(1, 0, 2));
  assert.deepEqual(offsets(fresh), [0, 1, 2]);
  assert.deepEqual(pending, []);
});

Deno.test("TakenOn forgets a partition whose deliveries failed (the stage stopped): its records are handed on again", async () => {
  const taken = new TakenOn();
  const failed = deferred();
  taken.add(0, 0n, 4n, failed.promise);
  failed.reject(new Error("The notifier stage is stopping"));
  await tick();
  assert.deepEqual(offsets(taken.split(0, records(0, 0, 4)).fresh), [0, 1, 2, 3, 4]);
});

Deno.test("TakenOn forgets partitions another member may have read (keepOnly) and a topic created again (forget)", () => {
  const taken = new TakenOn();
  for (const p of [0, 1, 2]) taken.add(p, 0n, 4n, new Promise(() => {}));
  taken.keepOnly([0, 2]);
  taken.forget([2]);
  assert.deepEqual(offsets(taken.split(0, records(0, 0, 4)).fresh), []);
  assert.deepEqual(offsets(taken.split(1, records(1, 0, 4)).fresh), [0, 1, 2, 3, 4]);
  assert.deepEqual(offsets(taken.split(2, records(2, 0, 4)).fresh), [0, 1, 2, 3, 4]);
});

Deno.test("TakenOn keeps what is under way right among thousands of batches settling in and out of order", async () => {
  const taken = new TakenOn();
  const batches = Array.from({ length: 3_000 }, () => deferred());
  batches.forEach((b, i) => taken.add(0, BigInt(i * 10), BigInt(i * 10 + 9), b.promise));
  // Every third batch stays under way; the others settle, the later ones first.
  for (let i = batches.length - 1; i >= 0; i--) if (i % 3 !== 0) batches[i]!.resolve();
  await tick();
  const { fresh, pending } = taken.split(0, records(0, 0, 30_009));
  assert.deepEqual(offsets(fresh), Array.from({ length: 10 }, (_, i) => 30_000 + i));
  assert.equal(pending.length, 1_000);
  for (let i = 0; i < batches.length; i += 3) batches[i]!.resolve();
  await tick();
  assert.deepEqual(taken.split(0, records(0, 0, 29_999)), { fresh: [], pending: [] });
});
