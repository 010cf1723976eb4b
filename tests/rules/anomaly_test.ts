import assert from "node:assert/strict";
import fc from "fast-check";
import {
  AnomalyProgram,
  anomalySlot,
  exportAnomalyState,
  importAnomalyState,
  MAX_WINDOW_VALUES,
  MIN_SAMPLES,
  type Slot,
} from "../../src/rules/anomaly.ts";
import { emptyOutput, RuleEngine } from "../../src/rules/engine.ts";
import { parseRuleFile } from "../../src/rules/load.ts";
import { engine, ev, ruleSet, T0 } from "../helpers/engine.ts";
import { checkProperty } from "../helpers/property.ts";

const S = 1000;
const M = 60 * S;

/** Feeds `values` one per `step` ms from `from`; returns every alert raised. */
function feed(e: RuleEngine, sensor: string, values: number[], from = T0, step = 10 * S) {
  const out = emptyOutput();
  values.forEach((v, i) => e.onEvent(ev(sensor, v), from + i * step, out));
  assert.deepEqual(out.errors, []);
  return out.alerts;
}

/** A steady signal around 20 with a little noise (deterministic). */
const steady = (n: number) => Array.from({ length: n }, (_, i) => 20 + ((i * 7) % 5 - 2) * 0.1);

const ZSCORE = `
rules:
  - id: spike
    sensor_type: temperature
    condition: { ">": [{ zscore: [value, 5m] }, 4] }
    priority: high
    message: "{{sensor_id}} {{value}} vs baseline {{baseline}} (deviation {{deviation}}, score {{score}})"
`;

Deno.test("zscore fires on a spike once warmed up, and the alert explains value, baseline and deviation", () => {
  const e = engine(ZSCORE);
  const alerts = feed(e, "t1", [...steady(60), 30]);
  assert.equal(alerts.length, 1);
  const a = alerts[0]!;
  assert.equal(a.state, "firing");
  assert.equal(a.value, 30);
  const [x] = a.anomaly!;
  assert.equal(x!.operation, "zscore");
  assert.equal(x!.field, "value");
  assert.equal(x!.value, 30);
  assert.ok(Math.abs(x!.baseline - 20) < 0.2, `baseline ${x!.baseline}`);
  assert.ok(x!.deviation > 0 && x!.deviation < 0.5, `deviation ${x!.deviation}`);
  assert.ok(x!.score > 4);
  assert.match(a.message, /^t1 30 vs baseline [\d.]+ \(deviation 0\.\d+, score \d+/);
});

Deno.test("zscore gives no verdict during its warm-up: the condition is false, whatever it compares", () => {
  // `null < 100` is true in JSON-Logic: without the warm-up rule every early event would fire.
  const e = engine(`
rules:
  - id: calm
    condition: { "<": [{ zscore: [value, 5m] }, 100] }
    priority: low
`);
  // 5 minutes of history is one half-life: events at 0..4m50s are the warm-up.
  assert.deepEqual(feed(e, "t1", steady(30)), []);
  assert.equal(feed(e, "t1", [20], T0 + 5 * M).length, 1);
});

Deno.test("anomaly state learns from every event, also when the condition short-circuits before it", () => {
  const yaml = (guard: string) => `
rules:
  - id: spike
    condition: { and: [${guard}, { ">": [{ zscore: [value, 5m] }, 4] }] }
    priority: high
`;
  // The guard is false for the whole warm-up: the baseline must still have been learnt.
  const e = engine(yaml(`{ ">": [{ var: value }, 25] }`));
  assert.equal(feed(e, "t1", [...steady(60), 30]).length, 1);
});

Deno.test("each sensor has its own baseline", () => {
  const e = engine(ZSCORE);
  feed(e, "cold", steady(60).map((v) => v - 15));
  feed(e, "warm", steady(60).map((v) => v + 10), T0 + 1);
  // 30 is ordinary for "warm" and far out for "cold".
  assert.equal(feed(e, "warm", [30], T0 + 11 * M).length, 0);
  assert.equal(feed(e, "cold", [30], T0 + 11 * M).length, 1);
});

Deno.test("robust_zscore uses the window's median and MAD: an earlier outlier does not hide the next", () => {
  const e = engine(`
rules:
  - id: robust
    condition: { ">": [{ abs: [{ robust_zscore: [value, 10m] }] }, 5] }
    priority: high
`);
  const values = steady(60);
  values[30] = 80; // one outlier inside the window: it would inflate a mean and a standard deviation
  const alerts = feed(e, "t1", [...values, 26]);
  assert.deepEqual(alerts.map((a) => [a.state, a.value]), [["firing", 26]]);
  const [x] = alerts[0]!.anomaly!;
  assert.equal(x!.operation, "robust_zscore");
  assert.ok(Math.abs(x!.baseline - 20) <= 0.2, `median ${x!.baseline}`);
});

Deno.test("rate_of_change is the change per `per` since the sensor's previous event", () => {
  const e = engine(`
rules:
  - id: heating-fast
    condition: { ">": [{ rate_of_change: [value, 1m] }, 3] }
    priority: normal
`);
  // +0.5 per 10 s is 3 per minute: not above; +1 per 10 s is 6 per minute.
  assert.deepEqual(feed(e, "t1", [20, 20.5, 21]), []);
  const alerts = feed(e, "t1", [22], T0 + 30 * S);
  assert.equal(alerts.length, 1);
  assert.deepEqual(
    { ...alerts[0]!.anomaly![0]!, score: Math.round(alerts[0]!.anomaly![0]!.score) },
    { operation: "rate_of_change", field: "value", value: 22, baseline: 21, deviation: 1, score: 6 },
  );
});

Deno.test("anomaly state survives a checkpoint: a restored engine judges the next event as the first would", () => {
  const before = engine(ZSCORE);
  before.trackChanges();
  feed(before, "t1", steady(60));
  const changelog = before.takeChanges();
  assert.ok(changelog.some((c) => c.kind === "anomaly" && c.group === "t1"));

  const after = engine(ZSCORE);
  after.trackChanges();
  after.importState(JSON.parse(JSON.stringify(changelog)));
  const spike = T0 + 60 * 10 * S;
  const a = feed(before, "t1", [30], spike);
  const b = feed(after, "t1", [30], spike);
  assert.equal(b.length, 1);
  assert.deepEqual(b[0]!.anomaly, a[0]!.anomaly);
});

Deno.test("anomaly state of a rule whose condition changed starts afresh", () => {
  const before = engine(ZSCORE);
  before.trackChanges();
  feed(before, "t1", steady(60));
  const after = engine(ZSCORE.replace("5m] }, 4]", "5m] }, 3]"));
  after.importState(before.takeChanges());
  assert.deepEqual(feed(after, "t1", [30], T0 + 10 * M), []);
});

Deno.test("a sensor judged by two anomaly rules keeps each one's baselines, through a reload that drops one and a checkpoint", () => {
  // The first rule's baselines live on the sensor's record, the second's beside them: when the first
  // goes, the second's must go on from what it learnt, not start a warm-up again.
  const two = `
rules:
  - { id: first, sensor_type: temperature, condition: { ">": [{ zscore: [value, 1m] }, 4] }, priority: low }
  - { id: second, sensor_type: temperature, condition: { ">": [{ robust_zscore: [value, 5m] }, 4] }, priority: low }
`;
  const second = two.split("\n").filter((l) => !l.includes("id: first")).join("\n");
  const both = engine(two);
  const alone = engine(second);
  both.trackChanges();
  const values = steady(40);
  feed(both, "t1", values);
  feed(alone, "t1", values);
  const spike = T0 + 40 * 10 * S;
  const reloaded = ruleSet(second);
  both.setRules(reloaded);
  const restored = new RuleEngine();
  restored.setRules(reloaded);
  restored.importState(JSON.parse(JSON.stringify(both.takeChanges())));
  const expected = feed(alone, "t1", [30], spike);
  assert.equal(expected.length, 1);
  const strip = (alerts: { rule_id: string; anomaly?: unknown }[]) =>
    alerts.map((a) => [a.rule_id, a.anomaly]);
  assert.deepEqual(strip(feed(both, "t1", [30], spike)), strip(expected));
  assert.deepEqual(strip(feed(restored, "t1", [30], spike)), strip(expected));
});

Deno.test("compileRule() refuses an anomaly operation with a bad field, duration or place, naming the path", () => {
  const problems = (condition: string, extra = "") =>
    parseRuleFile(
      "t.yaml",
      `rules:\n  - id: r\n    priority: low\n    condition: ${condition}\n${extra}`,
    ).problems.map((p) => `${p.line} ${p.message}`);
  assert.deepEqual(problems(`{ ">": [{ zscore: [valeu, 5m] }, 4] }`), [
    '4 At "condition.>.0.zscore.0": Unknown field "valeu" in "zscore" (known: event_id, sensor_id, sensor_type, value, unit, timestamp, location, metadata, schema_version)',
  ]);
  assert.deepEqual(problems(`{ ">": [{ zscore: [value, soon] }, 4] }`), [
    '4 At "condition.>.0.zscore.1": "zscore" needs a duration like "30m" as its argument 2, got "soon"',
  ]);
  assert.deepEqual(problems(`{ ">": [{ zscore: [{ var: value }, 5m] }, 4] }`), [
    '4 At "condition.>.0.zscore.0": "zscore" needs a field name like "value" as its argument 1',
  ]);
  assert.deepEqual(
    problems(`{ ">": [{ zscore: [avg, 5m] }, 4] }`, "    window: { type: tumbling, size: 1m }\n"),
    [
      '4 At "condition.>.0.zscore": "zscore" keeps a baseline per sensor over events: it applies to an event rule\'s condition or clear, not to a window rule',
    ],
  );
  assert.deepEqual(
    parseRuleFile(
      "t.yaml",
      `rules:\n  - id: r\n    priority: low\n    match: { ">": [{ ewma: [value, 5m] }, 4] }\n    threshold: { max: 1 }\n`,
    ).problems.map((p) => `${p.line} ${p.message}`),
    [
      '4 At "match.>.0.ewma": "ewma" keeps a baseline per sensor over events: it applies to an event rule\'s condition or clear, not to "match"',
    ],
  );
});

Deno.test("a comparison of an anomaly operation decides as the same comparison through JSON-Logic does", () => {
  // `{"+": [x, 0]}` keeps the comparison off the compiled fast paths (the whole condition read as
  // one comparison of the score, or the comparison inside a larger expression): the two rules must
  // agree, also while there is no verdict yet (a bound below 0 holds for any score, none for NaN).
  const bounds = [[1.5, false], [-1.5, false], [0, false], [1.5, true], [-1.5, true], [0, true]] as const;
  for (const op of [">", ">=", "<", "<="]) {
    for (const [bound, abs] of bounds) {
      const operand = abs ? `{ abs: [{ zscore: [value, 1m] }] }` : `{ zscore: [value, 1m] }`;
      const yaml = (left: string) => `
rules:
  - { id: r, condition: { "${op}": [${left}, ${bound}] }, priority: low }
`;
      const fast = engine(yaml(operand));
      const slow = engine(yaml(`{ "+": [${operand}, 0] }`));
      const values = Array.from(
        { length: 120 },
        (_, i) => 20 + Math.sin(i * 1.7) * 3 + (i % 17 === 0 ? 9 : 0),
      );
      const strip = (alerts: { state?: string; value: number; timestamp: string }[]) =>
        alerts.map((a) => [a.state, a.value, a.timestamp]);
      assert.deepEqual(
        strip(feed(fast, "t1", values)),
        strip(feed(slow, "t1", values)),
        `${op} ${bound} ${abs}`,
      );
    }
  }
});

/**
 * `robust_zscore` the straightforward way, as it was before its window was kept sorted: the values
 * in arrival order, copied and sorted twice per event. The reference of the differential test below.
 */
class RobustReference {
  s: { first: number; t: number[]; v: number[] } | null = null;
  constructor(readonly ms: number, readonly warmUpMs: number) {}
  /** The score, baseline and deviation for `x` at `time` (NaN for no verdict), then learns it. */
  observe(x: number, time: number): [number, number, number] {
    const verdict = this.#judge(x, time);
    this.#learn(x, time);
    return verdict;
  }
  #judge(x: number, time: number): [number, number, number] {
    const st = this.s;
    if (st === null) return [NaN, NaN, NaN];
    const from = _windowStart(st.t, time - this.ms);
    const values = st.v.slice(from);
    if (values.length < MIN_SAMPLES || time - st.first < this.warmUpMs) return [NaN, NaN, NaN];
    const median = _median(Float64Array.from(values).sort());
    const mad = _median(Float64Array.from(values, (v) => Math.abs(v - median)).sort());
    const deviation = _floor(1.4826 * mad, median);
    return [(x - median) / deviation, median, deviation];
  }
  #learn(x: number, time: number) {
    if (this.s === null) {
      this.s = { first: time, t: [time], v: [x] };
      return;
    }
    const st = this.s;
    if (time < (st.t.at(-1) ?? -Infinity)) return;
    st.t.push(time);
    st.v.push(x);
    const drop = Math.max(_windowStart(st.t, time - this.ms), st.v.length - MAX_WINDOW_VALUES);
    st.t.splice(0, drop);
    st.v.splice(0, drop);
  }
}
function _windowStart(t: number[], since: number): number {
  let i = 0;
  while (i < t.length && t[i]! <= since) i++;
  return i;
}
function _median(sorted: Float64Array): number {
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
function _floor(spread: number, level: number): number {
  const a = Math.abs(level);
  const least = a > 1 ? 1e-9 * a : 1e-9;
  return spread > least ? spread : least;
}

function robustSlot(ms: number, warmUpMs: number): Slot {
  const slot = anomalySlot("robust_zscore", ["value", ms, warmUpMs], [], ["value"], (_, m) => {
    throw new Error(m);
  });
  return slot!;
}

Deno.test("robust_zscore judges as sorting the window twice per event does, through late events, evictions and checkpoints", () => {
  const value = fc.oneof(
    fc.constantFrom(0, -0, 20, 20.1, 19.9, 80),
    fc.integer({ min: -3, max: 3 }),
    fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e6, max: 1e6 }),
  );
  const event = fc.record({
    step: fc.integer({ min: 0, max: 3 }),
    late: fc.oneof({ weight: 9, arbitrary: fc.constant(0) }, fc.integer({ min: 1, max: 12 })),
    value,
    checkpoint: fc.oneof({ weight: 19, arbitrary: fc.constant(false) }, fc.constant(true)),
  });
  checkProperty(
    fc.property(
      // Window and warm-up in seconds; events every 0 to 3 s, some up to 12 s late. A day's window
      // keeps every value but for the cap.
      fc.oneof(fc.integer({ min: 1, max: 20 }), fc.constant(86_400)),
      fc.integer({ min: 1, max: 10 }),
      // Short streams, and long enough ones for more values than a window keeps.
      fc.oneof(
        fc.array(event, { maxLength: 60 }),
        fc.array(event, { minLength: MAX_WINDOW_VALUES + 100, maxLength: MAX_WINDOW_VALUES + 200 }),
      ),
      (ms, warmUpMs, events) => {
        const slot = robustSlot(ms, warmUpMs);
        const program = new AnomalyProgram([slot]);
        let state = program.newState();
        const ref = new RobustReference(slot.ms, slot.warmUpMs);
        let clock = 0;
        for (const [i, e] of events.entries()) {
          clock += e.step;
          const time = (clock - e.late) * S;
          program.observe(state, { value: e.value }, time);
          const [score, baseline, deviation] = ref.observe(e.value, time);
          const got = program.frame[0]!;
          assert.ok(Object.is(got, score), `event ${i}: score ${got} against ${score}`);
          if (!Number.isNaN(score)) {
            const [x] = program.explain([0]);
            assert.ok(Object.is(x!.baseline, baseline), `event ${i}: median`);
            assert.ok(Object.is(x!.deviation, deviation), `event ${i}: deviation`);
          }
          // The changelog's value is the reference's state, as JSON.
          const saved = JSON.stringify(exportAnomalyState("h", state));
          assert.equal(saved, JSON.stringify({ rule_hash: "h", slots: [ref.s] }));
          if (e.checkpoint) {
            state = importAnomalyState(JSON.parse(saved), "h", [slot])!;
            // JSON has no -0: the reference goes through it too.
            ref.s = JSON.parse(JSON.stringify(ref.s));
          }
        }
      },
    ),
    100,
  );
});

Deno.test("robust_zscore reads back a checkpoint's window written as arrays of times and values", () => {
  const e = engine(`
rules:
  - id: robust
    condition: { ">": [{ robust_zscore: [value, 1m] }, 5] }
    priority: high
`);
  e.trackChanges();
  feed(e, "t0", [20]);
  const written = e.takeChanges().find((c) => c.kind === "anomaly");
  assert.ok(written?.kind === "anomaly" && written.value !== null);
  // A changelog entry as checkpoints have written it since robust_zscore exists (literal, not from
  // the exporter): a window of six values, 10 s apart.
  const t = [10, 20, 30, 40, 50, 60].map((s) => T0 + s * S);
  const slots = [{ first: T0, t, v: [20, 21, 19, 20, 22, 20] }];
  assert.equal(e.importState([{ ...written, group: "t1", value: { ...written.value, slots } }]), 1);
  // Median 20, MAD 0.5 (deviations 0 0 0 1 1 2): 26 scores (26 − 20) / 0.7413 ≈ 8.1.
  const alerts = feed(e, "t1", [26], T0 + 69 * S);
  assert.equal(alerts.length, 1);
  const [x] = alerts[0]!.anomaly!;
  assert.deepEqual([x!.baseline, x!.deviation], [20, 1.4826 * 0.5]);
});

Deno.test("a value too large for the baseline (1e200, ±1e308) is judged, not learnt: the sensor's zscore is not blinded for good", () => {
  // A finite value whose squared deviation overflows a double made the variance Infinity, and
  // Infinity × (1 − α) stays Infinity: every later z-score was 0 (or NaN), so the rule never fired
  // for that sensor again, and its checkpoint (Infinity is null in JSON) was dropped at a restart.
  for (
    const [name, poison] of [
      ["one 1e200 spike", [1e200]],
      ["+1e308 then -1e308", [1e308, -1e308]],
      ["-1e308 as the first value", null],
    ] as const
  ) {
    const e = engine(ZSCORE);
    e.trackChanges();
    let t = T0;
    const at = (values: readonly number[]) => {
      const alerts = feed(e, "t1", [...values], t);
      t += values.length * 10 * S;
      return alerts;
    };
    if (poison === null) at([-1e308]);
    at(steady(60));
    if (poison !== null) {
      const fired = at(poison);
      assert.equal(fired[0]?.state, "firing", `${name}: the poison itself is an anomaly`);
      assert.ok(fired.every((a) => a.anomaly!.every((x) => Number.isFinite(x.baseline))), name);
    }
    at(steady(60)); // ten minutes of the ordinary signal: the episode resolves
    const spike = at([30]);
    assert.deepEqual(spike.map((a) => [a.state, a.value]), [["firing", 30]], name);
    const x = spike[0]!.anomaly![0]!;
    assert.ok(Math.abs(x.baseline - 20) < 0.2 && x.deviation < 0.5, `${name}: ${JSON.stringify(x)}`);
    // What the changelog keeps is what JSON carries: the baseline comes back after a restart.
    const kept = e.takeChanges().filter((c) => c.kind === "anomaly" && c.group === "t1").at(-1);
    assert.deepEqual(JSON.parse(JSON.stringify(kept)), kept, name);
  }
});
