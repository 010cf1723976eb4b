/**
 * Before/after of the engine's CPU per event in one process: two checkouts' Pipelines (`A`, `B`: their
 * `scripts/bench/engine_cpu.ts`) take the same batches of the bench's traffic in turns, batch by batch,
 * each timed in CPU time. On a shared machine separate runs of one tree differ by ±25%; taking turns
 * per batch cancels the load that drifts between them (A against a copy of itself: 0.98-1.005).
 *
 * Usage: deno run --allow-read --allow-env --allow-sys scripts/bench/engine_ab.ts TREE_A TREE_B \
 *   [--events 200000] [--rounds 3] [--checkpoint]
 *
 * @module
 */
import process from "node:process";
import { parseArgs } from "node:util";
import type { InputRecord } from "../../src/contract/records.ts";
import { print } from "../../src/log.ts";
import type { Pipeline } from "../../src/pipeline.ts";
import type { OutRecord } from "../../src/transport/output.ts";

interface Tree {
  pipeline(): Pipeline;
  changelog: ((topic: string, p: number, changes: never[], ids: string[] | null) => OutRecord[]) | null;
}

async function tree(
  dir: string,
  checkpoint: boolean,
): Promise<Tree & { batches(n: number): InputRecord[][] }> {
  const root = `file://${dir.replace(/\/$/, "")}`;
  const bench = await import(`${root}/scripts/bench/engine_cpu.ts`);
  const format = checkpoint ? await import(`${root}/src/state/format.ts`) : null;
  const ruleSet = bench.benchRuleSet();
  return {
    pipeline: () => bench.benchPipeline(ruleSet, checkpoint),
    changelog: format?.changelogRecords ?? null,
    batches: (n) => bench.benchBatches(n),
  };
}

/** CPU microseconds of one batch through `p` (and its checkpoint when `t` writes a changelog). */
function step(t: Tree, p: Pipeline, batch: InputRecord[]): number {
  const before = process.cpuUsage();
  p.evaluate(batch);
  if (t.changelog !== null) {
    const partition = batch[0]!.partition!;
    const { changes, recentIds } = p.checkpoint(partition);
    t.changelog("state", partition, changes as never[], recentIds);
  }
  const used = process.cpuUsage(before);
  return used.user + used.system;
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    options: {
      events: { type: "string", default: "200000" },
      rounds: { type: "string", default: "3" },
      checkpoint: { type: "boolean", default: false },
    },
    allowPositionals: true,
    strict: true,
  });
  const [dirA, dirB] = positionals;
  if (dirA === undefined || dirB === undefined) throw new TypeError("Usage: engine_ab.ts TREE_A TREE_B");
  const a = await tree(dirA, values.checkpoint);
  const b = await tree(dirB, values.checkpoint);
  const batches = b.batches(Number(values.events));
  const ratios: number[] = [];
  for (let round = 1; round <= Number(values.rounds); round++) {
    const pa = a.pipeline();
    const pb = b.pipeline();
    let cpuA = 0;
    let cpuB = 0;
    let events = 0;
    for (const [i, batch] of batches.entries()) {
      events += batch.length;
      // Alternate which goes first, so neither always runs on the other's garbage.
      if (i % 2 === 0) {
        cpuA += step(a, pa, batch);
        cpuB += step(b, pb, batch);
      } else {
        cpuB += step(b, pb, batch);
        cpuA += step(a, pa, batch);
      }
    }
    ratios.push(cpuB / cpuA);
    print(
      `round ${round}: A ${(cpuA / events).toFixed(2)} µs/event, B ${
        (cpuB / events).toFixed(2)
      } µs/event, B/A ${(cpuB / cpuA).toFixed(3)}`,
    );
  }
  ratios.sort((x, y) => x - y);
  print(`median B/A ${ratios[Math.floor(ratios.length / 2)]!.toFixed(3)}`);
}
