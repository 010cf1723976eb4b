/**
 * What the bounded memory runs (workers.ts, rate_memory.ts) share: the service's command line with
 * the levers being compared (`--v8-flags` replaces the start task's V8 flags, `--env K=V,...` adds
 * settings, `--deno-flags` adds Deno flags such as `--cpu-prof`), and each thread's peak heap
 * read from the service's `/metrics` while it runs.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { print } from "../../src/log.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

/** The levers a bounded memory run compares, from its command line. */
export interface Levers {
  /** Positional arguments, in order. */
  args: string[];
  /** `--topic <prefix>`: read `<prefix>.events` of an earlier run instead of preloading again. */
  topic: string | undefined;
  /** `--env K=V,...`: settings added to the service's environment. */
  env: Record<string, string>;
  /** `--v8-flags <flags>`: replaces the start task's `--v8-flags`. */
  v8Flags: string | undefined;
  /** `--deno-flags "<flags>"`: Deno flags added to the start task's, such as `--cpu-prof`. */
  denoFlags: string[];
}

export function levers(argv: string[]): Levers {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      topic: { type: "string" },
      env: { type: "string", default: "" },
      "v8-flags": { type: "string" },
      "deno-flags": { type: "string", default: "" },
    },
    allowPositionals: true,
    strict: true,
  });
  return {
    args: positionals,
    topic: values.topic,
    env: Object.fromEntries(
      values.env.split(",").filter((kv) => kv.includes("=")).map((kv) => {
        const i = kv.indexOf("=");
        return [kv.slice(0, i), kv.slice(i + 1)];
      }),
    ),
    v8Flags: values["v8-flags"],
    denoFlags: values["deno-flags"].split(/\s+/).filter((f) => f !== ""),
  };
}

/** `deno task start`'s words between `deno` and `main.ts`, with the run's V8 and Deno flags. */
export async function startArgs(l: Levers): Promise<string[]> {
  const task = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`)).tasks.start as string;
  return task.split(/\s+/).slice(1, -1).concat(l.denoFlags)
    .map((a) => a.startsWith("--v8-flags=") && l.v8Flags !== undefined ? `--v8-flags=${l.v8Flags}` : a);
}

export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = l.addr as Deno.NetAddr;
  l.close();
  return port;
}

/** Per thread (main, engine-worker-K), the peak of each kind of `sensor_heap_bytes` (used, total, external). */
export type HeapPeaks = Map<string, Record<string, number>>;

/** Reads `sensor_heap_bytes` every second until stopped. */
export function followHeaps(port: number): { stop(): Promise<HeapPeaks> } {
  const peaks: HeapPeaks = new Map();
  let running = true;
  const loop = (async () => {
    while (running) {
      await new Promise((r) => setTimeout(r, 1000));
      const text = await fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.text(), () => "");
      for (const m of text.matchAll(/^sensor_heap_bytes\{thread="([^"]+)",kind="([^"]+)"\} (\S+)$/gm)) {
        const p = peaks.get(m[1]!) ?? {};
        p[m[2]!] = Math.max(p[m[2]!] ?? 0, Number(m[3]));
        peaks.set(m[1]!, p);
      }
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return peaks;
    },
  };
}

export function printHeaps(peaks: HeapPeaks): void {
  const mib = (b: number | undefined) => ((b ?? 0) / 2 ** 20).toFixed(0);
  for (const [thread, p] of [...peaks].sort()) {
    print(
      `  ${thread}: peak heap used ${mib(p.used)} MiB, total ${mib(p.total)} MiB, external ${
        mib(p.external)
      } MiB`,
    );
  }
}
