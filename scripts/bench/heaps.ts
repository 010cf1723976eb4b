/**
 * What the bounded memory runs (workers.ts, rate_memory.ts) share: the service's command line with
 * the levers being compared (`BENCH_V8_FLAGS` replaces the start task's V8 flags, `BENCH_ENV="K=V,..."`
 * adds settings, `BENCH_DENO_FLAGS` adds Deno flags such as `--cpu-prof`), and each thread's peak heap
 * read from the service's `/metrics` while it runs.
 *
 * @module
 */
import { print } from "../../src/log.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

/** `deno task start`'s words between `deno` and `main.ts`; `BENCH_V8_FLAGS` replaces its `--v8-flags`. */
export async function startArgs(): Promise<string[]> {
  const v8Flags = Deno.env.get("BENCH_V8_FLAGS");
  const task = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`)).tasks.start as string;
  const extra = (Deno.env.get("BENCH_DENO_FLAGS") ?? "").split(/\s+/).filter((f) => f !== "");
  return task.split(/\s+/).slice(1, -1).concat(extra)
    .map((a) => a.startsWith("--v8-flags=") && v8Flags !== undefined ? `--v8-flags=${v8Flags}` : a);
}

/** `BENCH_ENV="K=V,..."`: settings added to the service's environment. */
export function benchEnv(): Record<string, string> {
  return Object.fromEntries(
    (Deno.env.get("BENCH_ENV") ?? "").split(",").filter((kv) => kv.includes("=")).map((kv) => {
      const i = kv.indexOf("=");
      return [kv.slice(0, i), kv.slice(i + 1)];
    }),
  );
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
