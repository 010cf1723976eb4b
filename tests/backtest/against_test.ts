import assert from "node:assert/strict";
import { diffEpisodes } from "../../src/backtest/diff.ts";
import type { BacktestEpisode } from "../../src/backtest/episodes.ts";
import { ndjson, recording, runBacktest, shippedRulesDir } from "./_recording.ts";

const T0 = Date.UTC(2026, 0, 1);
const at = (s: number) => new Date(T0 + s * 1000).toISOString();

interface Ep {
  rule_id: string;
  group: string;
  start: string;
  end: string | null;
}
const brief = (e: Ep) => `${e.rule_id} ${e.group} ${e.start} .. ${e.end}`;

Deno.test("backtest --against finds exactly the episodes a changed threshold, a removed rule and a new rule change", async () => {
  const a = await shippedRulesDir();
  const b = await shippedRulesDir();
  try {
    // B: a higher maximum for temperature, no humidity rule, a new pressure rule.
    const def = await Deno.readTextFile(`${b}/default.yaml`);
    const changed = def
      .replace("threshold: { min: 10, max: 35 }", "threshold: { min: 10, max: 37 }")
      .replace(/\n {2}- id: humidity-out-of-range[\s\S]*?(?=\n {2}- id: )/, "");
    assert.notEqual(changed, def);
    assert.ok(!changed.includes("humidity-out-of-range"));
    await Deno.writeTextFile(`${b}/default.yaml`, changed);
    await Deno.writeTextFile(
      `${b}/pressure.yaml`,
      "rules:\n  - id: pressure-low\n    sensor_type: pressure\n    threshold: { min: 1020 }\n    priority: low\n    message: low\n",
    );
    const out = await runBacktest(["--input", "-", "--json", "--rules", a, "--against", b], {
      stdin: ndjson(recording(T0)),
    });
    assert.equal(out.code, 0, out.stdout + out.stderr);
    const diff = (JSON.parse(out.stdout) as {
      against: {
        diff: {
          rules: { rule_id: string; only_a: number; only_b: number; changed: number; same: number }[];
          only_a: Ep[];
          only_b: Ep[];
          changed: { a: Ep; b: Ep }[];
        };
      };
    }).against.diff;
    // temp-1 is 36..38 from 100 s to 160 s and 37 at 400 s: above 35 twice, above 37 at 110 s and 140 s.
    assert.deepEqual(diff.only_a.map(brief), [
      `temperature-out-of-range temp-1 ${at(400)} .. ${at(410)}`,
      `humidity-out-of-range sentinel ${at(1210)} .. null`,
    ]);
    assert.deepEqual(diff.only_b.map(brief), [
      `pressure-low press-1 ${at(0)} .. null`,
      `temperature-out-of-range temp-1 ${at(140)} .. ${at(150)}`,
    ]);
    assert.deepEqual(diff.changed.map((c) => [brief(c.a), brief(c.b)]), [[
      `temperature-out-of-range temp-1 ${at(100)} .. ${at(160)}`,
      `temperature-out-of-range temp-1 ${at(110)} .. ${at(120)}`,
    ]]);
    const counts = Object.fromEntries(
      diff.rules.map((r) => [r.rule_id, [r.only_a, r.only_b, r.changed, r.same].join(" ")]),
    );
    assert.equal(counts["temperature-out-of-range"], "1 1 1 0");
    assert.equal(counts["humidity-out-of-range"], "1 0 0 0");
    assert.equal(counts["pressure-low"], "0 1 0 0");
    // Untouched rules: every episode the same in both.
    assert.equal(counts["co2-average-high"], "0 0 0 1");
    assert.equal(counts["sensor-silent"], "0 0 0 2");
    assert.equal(counts["temperature-hot-repeat"], "0 0 0 2");

    // The same difference as text on a terminal.
    const text = await runBacktest(["--input", "-", "--rules", a, "--against", b], {
      stdin: ndjson(recording(T0)),
    });
    assert.equal(text.code, 0, text.stdout + text.stderr);
    const lines = text.stdout.split("\n");
    assert.ok(
      lines.includes(`  - only in A: temperature-out-of-range temp-1 ${at(400)} .. ${at(410)}`),
      text.stdout,
    );
    assert.ok(lines.includes(`  + only in B: pressure-low press-1 ${at(0)} .. (open)`), text.stdout);
    assert.ok(
      lines.includes(
        `  ~ changed:   temperature-out-of-range temp-1 ${at(100)} .. ${at(160)}  ->  ${at(110)} .. ${
          at(120)
        }`,
      ),
      text.stdout,
    );
    assert.match(text.stdout, /^temperature-out-of-range\s+2\s+2\s+1\s+1\s+1\s+0$/m);
  } finally {
    await Deno.remove(a, { recursive: true });
    await Deno.remove(b, { recursive: true });
  }
});

function ep(rule_id: string, group: string, start: number, end: number | null): BacktestEpisode {
  return {
    rule_id,
    group,
    sensor_id: group,
    sensor_type: "temperature",
    priority: "high",
    alert_id: `${rule_id}-${group}-${start}`,
    start,
    end,
    first_breach: null,
    repeats: 0,
    value: 0,
    threshold: null,
    resolved_reason: null,
  };
}

Deno.test("diffEpisodes() pairs an identical episode before an overlapping one of the same rule and group", () => {
  const d = diffEpisodes(
    [ep("r", "s", 0, 100), ep("r", "s", 200, 300)],
    [ep("r", "s", 50, 250), ep("r", "s", 200, 300), ep("r", "t", 200, 300)],
  );
  assert.equal(d.same, 1);
  assert.deepEqual(d.changed.map((c) => [c.a.start, c.b.start]), [[0, 50]]);
  assert.deepEqual(d.only_b.map((e) => e.group), ["t"]);
  assert.deepEqual(d.only_a, []);
});
