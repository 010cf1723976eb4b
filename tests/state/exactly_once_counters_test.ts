import assert from "node:assert/strict";
import { createLogger } from "../../src/log.ts";
import { Pipeline } from "../../src/pipeline.ts";
import { RuleRegistry } from "../../src/rules/registry.ts";
import { countersCopy, takeBack } from "../../src/state/exactly_once.ts";
import { event, MemoryOutput, record } from "../helpers/events.ts";

Deno.test("takeBack() leaves the counters as if a failed transaction's batch was never evaluated", async () => {
  const registry = new RuleRegistry("rules");
  await registry.reload();
  const p = new Pipeline({
    ruleSet: () => registry.ruleSet,
    output: new MemoryOutput(),
    topics: { alerts: "alerts", dlq: "dead-letter-queue" },
    logger: createLogger({ level: "error" }),
  });
  p.evaluate([record(event({ value: 20 }), 1)]);
  const committed = countersCopy(p.counters);
  const batch = [
    record(event({ value: 50 }), 2),
    record("{oops", 3),
    record(JSON.stringify({ ...event(), value: "hot" }), 4),
    record(event({ value: 51 }), 5),
  ];
  const before = countersCopy(p.counters);
  p.evaluate(batch);
  const counted = countersCopy(p.counters);
  assert.ok(counted.events > before.events && counted.alerts > before.alerts, "the batch was counted");
  takeBack(p.counters, before, counted);
  assert.deepEqual(countersCopy(p.counters), {
    ...committed,
    // A stage counted for the first time is left at 0, not removed.
    dead_letters: Object.fromEntries(
      Object.keys(counted.dead_letters).map((k) => [k, committed.dead_letters[k] ?? 0]),
    ),
    invalid: new Map([...counted.invalid.keys()].map((k) => [k, committed.invalid.get(k) ?? 0])),
  });
});
