/**
 * What one event costs through the whole engine (decode, validate, duplicate check, stats, rules),
 * with 10 and 1,000 loaded rules, in batches as the Kafka source hands them over.
 */
import type { RuleSet } from "../../src/rules/ruleset.ts";
import { type InputRecord, Pipeline } from "../../src/pipeline.ts";
import { createLogger } from "../../src/log.ts";
import { MemoryOutput } from "../helpers/events.ts";
import { encodedEvents, generatedRuleSet } from "./_fixtures.ts";

const BATCH = 1000;
const texts = encodedEvents(10_000);

function pipelineWith(ruleSet: RuleSet): (b: Deno.BenchContext) => void {
  const pipeline = new Pipeline({
    ruleSet: () => ruleSet,
    output: new MemoryOutput(),
    topics: { alerts: "alerts", dlq: "dlq" },
    logger: createLogger({ level: "error" }),
  });
  let n = 0;
  // Every event id new, as on a live stream: the duplicate filter works at capacity.
  const batch = (): InputRecord[] =>
    Array.from({ length: BATCH }, () => {
      const text = texts[n % texts.length]!.replace(/"event_id":"[^"]+"/, `"event_id":"e-${n++}"`);
      return {
        topic: "events",
        partition: 0,
        offset: String(n),
        key: null,
        value: new TextEncoder().encode(text),
      };
    });
  for (let i = 0; i < 110; i++) pipeline.evaluate(batch());
  return (b) => {
    const records = batch();
    b.start();
    pipeline.evaluate(records);
    b.end();
  };
}

Deno.bench(
  `10 rules, per batch of ${BATCH}`,
  { group: "pipeline", baseline: true },
  pipelineWith(generatedRuleSet(10)),
);
Deno.bench(`1,000 rules, per batch of ${BATCH}`, { group: "pipeline" }, pipelineWith(generatedRuleSet(1000)));
