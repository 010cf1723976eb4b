/** Out-of-order, late and future timestamps through the Pipeline, handled as the README documents. */
import assert from "node:assert/strict";
import { DEFAULT_MAX_FUTURE_SKEW_MS } from "../../src/decode/decode.ts";
import { createLogger } from "../../src/log.ts";
import { Pipeline } from "../../src/pipeline.ts";
import { parseRuleFile } from "../../src/rules/load.ts";
import { RuleSet } from "../../src/rules/ruleset.ts";
import { MemoryOutput, record } from "../helpers/events.ts";
import { FIRST_WINDOW, scenario, STATS, STEPS, WINDOW_RULES } from "./timestamp_scenario.ts";

const topics = { alerts: "alerts", dlq: "dlq", aggregates: "aggregates" };

function pipeline(maxFutureSkewMs?: number) {
  const { rules, problems } = parseRuleFile("window.yaml", WINDOW_RULES);
  assert.deepEqual(problems, []);
  const ruleSet = new RuleSet(rules);
  const output = new MemoryOutput();
  const p = new Pipeline({
    ruleSet: () => ruleSet,
    output,
    topics,
    logger: createLogger({ level: "error" }),
    ...(maxFutureSkewMs === undefined ? {} : { decode: { maxFutureSkewMs } }),
  });
  return { p, output };
}

Deno.test("Pipeline handles out-of-order, late and future timestamps as documented", async () => {
  const { p, output } = pipeline(DEFAULT_MAX_FUTURE_SKEW_MS);
  const { events } = scenario("unit");
  for (const [i, e] of events.entries()) {
    await p.process([record(e, i)]);
    if (i === 2) {
      const s = p.stats.get("co2-ts")!;
      assert.equal(s.count, 3, STEPS[i]!.what);
      assert.equal(s.last_value, 200, "an out-of-order event does not become the last value");
    }
  }
  const dlq = output.on("dlq");
  assert.equal(dlq.length, 1);
  assert.equal(dlq[0]!.stage, "validate");
  assert.match(String(dlq[0]!.error), /^Field "timestamp": ".+" is \d+ s ahead of the wall clock/);
  assert.equal(dlq[0]!.original_offset, "3");

  const s = p.stats.get("co2-ts")!;
  assert.deepEqual({ count: s.count, min: s.min, max: s.max, last_value: s.last_value }, STATS);
  const [first, ...rest] = output.on("aggregates");
  assert.equal(rest.length, 0, "only the first window has closed");
  assert.deepEqual(
    { count: first!.count, min: first!.min_value, max: first!.max_value, avg: first!.avg_value },
    FIRST_WINDOW,
  );
  assert.equal(p.counters.late_events, 1);
  assert.equal(p.counters.invalid.get("validate\u0000future_timestamp"), 1);
});

Deno.test("Pipeline without the future guard lets one far-future event close every open window early", async () => {
  // Why the guard exists: the same stream with the check off.
  const { p, output } = pipeline();
  const { events } = scenario("unguarded");
  await p.process(events.map((e, i) => record(e, i)));
  assert.equal(output.on("dlq").length, 0);
  const [first] = output.on("aggregates");
  assert.equal(first!.count, 3, "closed by the future event, before the on-time events that followed");
  assert.equal(p.counters.late_events, 4, "every later event came too late");
});
