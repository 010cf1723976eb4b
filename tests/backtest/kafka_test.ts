import assert from "node:assert/strict";
import { newestOf, type Range } from "../../src/backtest/kafka.ts";

const range = (...parts: [number, number][]): Range =>
  new Map(parts.map(([start, end], p) => [p, { start: BigInt(start), end: BigInt(end) }]));
const plain = (r: Range) => [...r].map(([p, { start, end }]) => [p, Number(start), Number(end)]);

Deno.test("newestOf() keeps a range within its bound as it is", () => {
  const r = range([0, 10], [5, 10]);
  assert.deepEqual(newestOf(r, 15), { range: r, capped: false });
});

Deno.test("newestOf() keeps the newest records of each partition in proportion to its share, within the bound", () => {
  const { range: r, capped } = newestOf(range([0, 100], [50, 100], [7, 7]), 30);
  assert.equal(capped, true);
  // 100 and 50 of 150: 20 and 10 of 30, each partition's end unchanged, the empty one empty.
  assert.deepEqual(plain(r), [[0, 80, 100], [1, 90, 100], [2, 7, 7]]);
  const odd = newestOf(range([0, 10], [0, 10], [0, 10]), 10).range;
  const kept = [...odd.values()].reduce((n, x) => n + Number(x.end - x.start), 0);
  assert.ok(kept <= 10, `${kept} records kept`);
  assert.deepEqual(plain(newestOf(range([0, 10]), 0).range), [[0, 10, 10]]);
});
