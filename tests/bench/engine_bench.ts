/**
 * Rule evaluation through the real RuleSet and RuleEngine, for an event that matches few rules:
 * the cost should follow the rules that can match, not the rules loaded.
 */
import { emptyOutput, RuleEngine } from "../../src/rules/engine.ts";
import type { RuleSet } from "../../src/rules/ruleset.ts";
import { decodedEvents, generatedLogicRuleSet, generatedRuleSet, T0 } from "./_fixtures.ts";

const events = decodedEvents(10_000);

function engineWith(ruleSet: RuleSet): (b: Deno.BenchContext) => void {
  const engine = new RuleEngine();
  engine.setRules(ruleSet);
  const out = emptyOutput();
  // Warm the per-sensor candidate cache, as a running service has.
  for (const e of events) engine.onEvent(e, T0, out, T0);
  let i = 0;
  return () => {
    engine.onEvent(events[i++ % events.length]!, T0 + i, out, T0);
    out.alerts.length = 0;
  };
}

Deno.bench("10 rules", { group: "rules", baseline: true }, engineWith(generatedRuleSet(10)));
Deno.bench("100 rules", { group: "rules" }, engineWith(generatedRuleSet(100)));
Deno.bench("1,000 rules", { group: "rules" }, engineWith(generatedRuleSet(1000)));
Deno.bench(
  "1,000 rules, all type-wide (the index cannot help)",
  { group: "rules" },
  engineWith(generatedRuleSet(1000, "type")),
);

Deno.bench(
  "10 rules, all JSON-Logic",
  { group: "logic", baseline: true },
  engineWith(generatedLogicRuleSet(10)),
);
Deno.bench("100 rules, all JSON-Logic", { group: "logic" }, engineWith(generatedLogicRuleSet(100)));
Deno.bench("1,000 rules, all JSON-Logic", { group: "logic" }, engineWith(generatedLogicRuleSet(1000)));
Deno.bench(
  "1,000 rules, all JSON-Logic and type-wide (every rule runs its condition)",
  { group: "logic" },
  engineWith(generatedLogicRuleSet(1000, "type")),
);
