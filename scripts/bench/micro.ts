/** Runs the micro benchmarks (`deno bench` over tests/bench/) and keeps their averages. */

export interface MicroResult {
  file: string;
  group: string | null;
  name: string;
  avg_ns: number;
  p99_ns: number;
}

const ROOT = new URL("../../", import.meta.url).pathname;

export async function runMicro(progress: (line: string) => void): Promise<MicroResult[]> {
  progress("Micro benchmarks (deno bench tests/bench/)…");
  const out = await new Deno.Command("deno", {
    args: [
      "bench",
      "--json",
      "--allow-read=.",
      // NODE_ENV: kafkajs reads it as it is imported (the engine's per-event bench keys records with
      // its partitioner, src/transport/partitioner.ts).
      "--allow-env=LOG_LEVEL,LOG_STREAM,LOG_TOKENS,NO_COLOR,NODE_ENV",
      "tests/bench/",
    ],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "inherit",
  }).output();
  if (!out.success) throw new Error(`deno bench exited ${out.code}`);
  const json = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    benches: {
      origin: string;
      group: string | null;
      name: string;
      results: { ok?: { avg: number; p99: number } }[];
    }[];
  };
  const results = json.benches.map((b) => ({
    file: b.origin.replace(/^.*\/tests\/bench\//, "tests/bench/"),
    group: b.group,
    name: b.name,
    avg_ns: b.results[0]?.ok?.avg ?? NaN,
    p99_ns: b.results[0]?.ok?.p99 ?? NaN,
  }));
  for (const r of results) progress(`  ${r.name}: ${formatNs(r.avg_ns)}`);
  return results;
}

export function formatNs(ns: number): string {
  return ns >= 1000 ? `${(ns / 1000).toFixed(2)} µs` : `${ns.toFixed(0)} ns`;
}
