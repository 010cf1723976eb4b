/**
 * A window rule's `p95` keeps bounded state: exact (nearest rank) while a window holds at most
 * `P95_EXACT_VALUES` values, a quantile sketch within 1% beyond (src/rules/quantile_sketch.ts). Before,
 * every value was kept and checkpointed: 60,000 events of one group made a 1,116,931-byte changelog
 * record, over the broker's default `max.message.bytes` (1,048,588).
 */
import assert from "node:assert/strict";
import { emptyOutput, type RuleEngine } from "../../src/rules/engine.ts";
import { percentile } from "../../src/rules/windows.ts";
import { prng } from "../../src/simulator/sensors.ts";
import { changelogRecords } from "../../src/state/format.ts";
import { engine, ev, T0 } from "../helpers/engine.ts";

const P95_HOURLY = `rules:
  - id: busy-p95
    sensor_type: temperature
    window: { type: tumbling, size: 1h }
    group_by: location
    condition: { ">": [{ var: p95 }, 1e12] }
    publish: true
    priority: low
`;

/** The cap the tests are written against (src/rules/windows.ts, P95_EXACT_VALUES). */
const CAP = 2048;

/** Sensor-like values: readings with 3 decimals, negatives, zeros, duplicates and rare spikes. */
function values(n: number, seed: number): number[] {
  const r = prng(seed);
  return Array.from({ length: n }, () => {
    const k = r();
    if (k < 0.05) return 0;
    if (k < 0.3) return -Math.round(r() * 50_000) / 1000;
    if (k < 0.98) return Math.round((15 + r() * 15) * 1000) / 1000;
    return Math.round(r() * 1e6);
  });
}

/** Feeds `vs` into one group of the hourly window, 10 ms apart, then closes it; the size of each checkpoint. */
function run(
  e: RuleEngine,
  vs: number[],
  checkpointEvery: number,
): { p95: unknown; agg: Record<string, unknown>; biggest: number } {
  const out = emptyOutput();
  let biggest = 0;
  const checkpoint = () => {
    for (const r of changelogRecords("state", 0, e.takeChanges(), null)) {
      biggest = Math.max(biggest, new TextEncoder().encode(r.value ?? "").byteLength);
    }
  };
  vs.forEach((v, i) => {
    e.onEvent(ev("t-1", v), T0 + i * 10, out);
    if ((i + 1) % checkpointEvery === 0) checkpoint();
  });
  checkpoint();
  // The group's own time passing the hour's end closes its window.
  e.onEvent(ev("t-1", 20), T0 + 3_600_000, out);
  assert.equal(out.aggregates.length, 1);
  const agg = out.aggregates[0]! as Record<string, unknown>;
  assert.equal(agg.count, vs.length);
  return { p95: agg.p95, agg, biggest };
}

Deno.test("a p95 window of one group fed 200,000 values: its changelog record stays under 128 KiB, p95 within 1%", () => {
  const e = engine(P95_HOURLY);
  e.trackChanges();
  const vs = values(200_000, 7);
  const { p95, agg, biggest } = run(e, vs, 10_000);
  // Before: every value kept, 1,368,601 bytes for this window at the last checkpoint; now 6,596.
  assert.ok(biggest < 128 * 1024, `the window's changelog record was ${biggest} bytes`);
  const exact = percentile(vs, 0.95);
  assert.equal(typeof p95, "number");
  assert.ok(
    Math.abs((p95 as number) - exact) <= 0.01 * Math.abs(exact),
    `p95 ${p95} against the exact ${exact}`,
  );
  assert.equal(agg.p95_estimated, true, "the aggregate says the sketch answered");
});

Deno.test("p95 is the exact nearest rank while the window holds at most the cap, and estimated from one more", () => {
  for (const n of [1, 2, 20, CAP - 1, CAP]) {
    const vs = values(n, n);
    const { p95, agg } = run(engine(P95_HOURLY), vs, Infinity);
    assert.equal(p95, percentile(vs, 0.95), `${n} values`);
    assert.equal("p95_estimated" in agg, false, `${n} values: no p95_estimated`);
  }
  const vs = values(CAP + 1, 3);
  const { p95, agg } = run(engine(P95_HOURLY), vs, Infinity);
  const exact = percentile(vs, 0.95);
  assert.ok(Math.abs((p95 as number) - exact) <= 0.01 * Math.abs(exact), `p95 ${p95} against ${exact}`);
  assert.equal(agg.p95_estimated, true);
});
