/**
 * What the changelog carries is enough to continue: a partition checkpointed half-way through a
 * window and an episode, then restored into a fresh pipeline (a restart), ends exactly as if it had
 * never stopped.
 */
import assert from "node:assert/strict";
import { createLogger } from "../../src/log.ts";
import { Pipeline } from "../../src/pipeline.ts";
import type { StateChange } from "../../src/rules/changes.ts";
import { changelogRecords, parseSnapshot } from "../../src/state/format.ts";
import { parseRuleFile } from "../../src/rules/load.ts";
import { RuleSet } from "../../src/rules/ruleset.ts";
import { MemoryOutput, record } from "../helpers/events.ts";

const RULES = parseRuleFile(
  "t.yaml",
  `rules:
  - id: hot
    sensor_type: temperature
    threshold: { max: 35 }
    priority: high
  - id: avg
    sensor_type: temperature
    window: { type: tumbling, size: 5m }
    condition: { ">": [{ var: count }, 0] }
    publish: true
    priority: low
  - id: silent
    sensor_type: temperature
    absent_for: 10m
    priority: normal
`,
);
const ruleSet = new RuleSet(RULES.rules);
const T0 = Date.UTC(2026, 10, 25, 12, 0, 0);

function pipeline(output: MemoryOutput) {
  return new Pipeline({
    ruleSet: () => ruleSet,
    output,
    topics: { alerts: "alerts", dlq: "dlq", aggregates: "aggregates" },
    logger: createLogger({ level: "error" }),
    checkpoint: true,
  });
}

function events(from: number, to: number) {
  const out = [];
  for (let i = from; i < to; i++) {
    const r = record({
      event_id: `e-${i}`,
      sensor_id: "temp-001",
      sensor_type: "temperature",
      value: 40 + (i % 3),
      unit: "°C",
      timestamp: new Date(T0 + i * 1000).toISOString(),
    }, i);
    out.push({ ...r, partition: 2 });
  }
  return out;
}

/** The changes as a restore reads them back: written as records, compacted (newest per key), parsed. */
function throughChangelog(changes: StateChange[]): StateChange[] {
  const compacted = new Map<string, string>();
  for (const r of changelogRecords("state", 2, changes, null)) {
    if (r.value === null) compacted.delete(r.key!);
    else compacted.set(r.key!, r.value);
  }
  const problems: string[] = [];
  const { changes: read } = parseSnapshot(compacted, (key, err) => problems.push(`${key}: ${err.message}`));
  assert.deepEqual(problems, []);
  return read;
}

Deno.test("a partition restored from its checkpoint continues its window, episode and duplicate check", async () => {
  assert.deepEqual(RULES.problems, []);
  // Without a stop: 400 events, one window of 300 closes at 300 s.
  const straight = new MemoryOutput();
  await pipeline(straight).process(events(0, 400));

  // With a restart at 150 s: checkpoint, a fresh pipeline restores, then the rest (and a redelivery).
  const before = new MemoryOutput();
  const first = pipeline(before);
  await first.process(events(0, 150));
  const { changes, recentIds } = first.checkpoint(2, 10_000);
  assert.ok(recentIds !== null && recentIds.includes("e-149"));
  const after = new MemoryOutput();
  const second = pipeline(after);
  second.restorePartition(2, throughChangelog(changes), recentIds!);
  await second.process([...events(140, 150), ...events(150, 400)]);

  const alerts = (o: MemoryOutput) => o.on("alerts").map((a) => `${a.rule_id} ${a.state} ${a.timestamp}`);
  assert.deepEqual(
    [...alerts(before), ...alerts(after)],
    alerts(straight),
    "the episode does not fire again",
  );
  const aggs = (o: MemoryOutput) => o.on("aggregates").map((a) => [a.window_start, a.count, a.avg_value]);
  assert.deepEqual(aggs(after), aggs(straight), "the window counted all 300 events across the restart");
  assert.equal(aggs(after)[0]![1], 300);
  assert.equal(second.counters.duplicates, 10, "the redelivered events are recognised");
  assert.ok(changes.some((e) => e.kind === "deadman"), "the deadman timer is checkpointed");
});
