/**
 * What one event of the bench's traffic costs the engine, per batch of 500 records of one partition:
 * the shipped rules and 100 generated ones, 10,000 sensors, 1% anomalies, ~300-byte events, as
 * `deno task bench` sends them, without the broker. At-least-once runs the Pipeline alone;
 * exactly-once adds the changelog records of what each batch changed.
 * `scripts/bench/engine_cpu.ts` measures the same in CPU time, for profiles.
 */
import { benchPipeline, benchRuleSet, benchStream } from "../../scripts/bench/engine_cpu.ts";
import type { InputRecord } from "../../src/contract/records.ts";
import { changelogRecords } from "../../src/state/format.ts";

const ruleSet = benchRuleSet();

function perBatch(checkpoint: boolean): (b: Deno.BenchContext) => void {
  const pipeline = benchPipeline(ruleSet, checkpoint);
  const stream = benchStream();
  const step = (batch: InputRecord[]) => {
    pipeline.evaluate(batch);
    if (checkpoint) {
      const p = batch[0]!.partition!;
      const { changes, recentIds } = pipeline.checkpoint(p);
      changelogRecords("state", p, changes, recentIds);
    }
  };
  // The fleet's 10,000 sensors twelve times over: their state is warm and windows close, as on a
  // stream that has been running. New events only, each timed without its generation.
  for (let i = 0; i < 240; i++) step(stream.next());
  return (b) => {
    const batch = stream.next();
    b.start();
    step(batch);
    b.end();
  };
}

Deno.bench("at-least-once, per batch of 500", { group: "engine", baseline: true }, perBatch(false));
Deno.bench("exactly-once (with the changelog), per batch of 500", { group: "engine" }, perBatch(true));
