/**
 * Summarises a V8 .cpuprofile (from `--cpu-prof`): self time by function and by where the code lives
 * (kafkajs, zod, json-logic-js, this repo's folders, runtime), so a report can say what the CPU did.
 *
 * Usage: deno run --allow-read scripts/bench/profile.ts FILE.cpuprofile [TOP]
 *
 * @module
 */
import { print } from "../../src/log.ts";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

export interface ProfileSummary {
  total_ms: number;
  byArea: [string, number][];
  byFunction: [string, number][];
}

export function area(url: string): string {
  const npm = /registry\.npmjs\.org\/([^/]+)\//.exec(url);
  if (npm) return npm[1]!;
  const repo = /\/(src\/[^/]+|main\.ts|plugins)/.exec(url);
  if (repo) return repo[1]!;
  if (url === "") return "(native, GC, idle)";
  return "(runtime: deno, node compat)";
}

export function summarize(profile: {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const fn = new Map<string, number>();
  const ar = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const node = byId.get(id)!;
    const dt = (profile.timeDeltas[i] ?? 0) / 1000;
    const { functionName, url, lineNumber } = node.callFrame;
    if (functionName === "(idle)") return;
    total += dt;
    const name = `${functionName || "(anonymous)"} ${url.replace(/^.*\//, "")}:${lineNumber + 1}`;
    fn.set(name, (fn.get(name) ?? 0) + dt);
    const a = functionName === "(garbage collector)" ? "(garbage collector)" : area(url);
    ar.set(a, (ar.get(a) ?? 0) + dt);
  });
  const sorted = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]);
  return { total_ms: total, byArea: sorted(ar), byFunction: sorted(fn) };
}

if (import.meta.main) {
  const [file, top = "25"] = Deno.args;
  if (file === undefined) throw new TypeError("Usage: profile.ts FILE.cpuprofile [TOP]");
  const s = summarize(JSON.parse(await Deno.readTextFile(file)));
  const pct = (ms: number) => `${((ms / s.total_ms) * 100).toFixed(1).padStart(5)}%`;
  print(`Busy ${(s.total_ms / 1000).toFixed(2)} s (idle left out)\n\nBy area:`);
  for (const [a, ms] of s.byArea.slice(0, 15)) print(`  ${pct(ms)}  ${a}`);
  print("\nBy function (self time):");
  for (const [f, ms] of s.byFunction.slice(0, Number(top))) print(`  ${pct(ms)}  ${f}`);
}
