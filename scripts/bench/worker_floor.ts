/**
 * What an engine worker costs the process before it holds any state: the resident memory added by
 * `--workers` threads that each import one set of modules and wait, against the same process before
 * them. Says where a worker's floor comes from (a thread's isolate, the libraries, the service's own
 * modules), so a lever for it can be judged before it is built.
 *
 * Each measurement is a process of its own: in one process, a thread started after others had ended
 * reused the memory they left and seemed to cost half as much.
 *
 *   deno run --allow-read --allow-env --allow-sys --allow-run scripts/bench/worker_floor.ts [--workers 2] [--rounds 3]
 *
 * @module
 */
import { parseArgs } from "node:util";
import { print } from "../../src/log.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    workers: { type: "string", default: "2" },
    rounds: { type: "string", default: "3" },
    /** Internal: measure this set (its index) in this process and print the MiB. */
    one: { type: "string" },
  },
  strict: true,
});
const workers = Number(values.workers);
const rounds = Number(values.rounds);

const src = (path: string) => new URL(`../../src/${path}`, import.meta.url).href;
/** What each set's worker imports. */
const SETS: Record<string, string[]> = {
  "nothing (a thread's isolate)": [],
  "the engine's libraries (kafkajs, zod, yaml, json-logic-js)": ["kafkajs", "zod", "yaml", "json-logic-js"],
  "the engine stage (both guarantees)": [
    src("engine/stage.ts"),
    src("engine/at_least_once.ts"),
    src("state/exactly_once.ts"),
  ],
  "the whole service (what engine_worker.ts imports)": [src("workers/engine_worker.ts")],
};

const rssMiB = () => Deno.memoryUsage().rss / 2 ** 20;

/** MiB each worker added once its modules were evaluated (a settled process, after a collection). */
async function floor(imports: string[]): Promise<number> {
  // A module of its own per set: the worker's imports, then a message that it is up. The
  // engine_worker module waits for the main thread's first message, so it is only imported.
  const code = `${imports.map((m) => `import ${JSON.stringify(m)};`).join("\n")}\nself.postMessage("up");`;
  const url = URL.createObjectURL(new Blob([code], { type: "application/javascript" }));
  await settle();
  const before = rssMiB();
  const started: Worker[] = [];
  for (let i = 0; i < workers; i++) {
    const w = new Worker(url, { type: "module" });
    await new Promise<void>((resolve, reject) => {
      w.onmessage = () => resolve();
      w.onerror = (e) => {
        e.preventDefault();
        reject(new Error(e.message));
      };
    });
    started.push(w);
  }
  await settle();
  const added = (rssMiB() - before) / workers;
  for (const w of started) w.terminate();
  URL.revokeObjectURL(url);
  return added;
}

/** Lets the threads finish what they started and the allocator return what it freed. */
function settle(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 500));
}

if (values.one !== undefined) {
  const imports = Object.values(SETS)[Number(values.one)]!;
  print(String(await floor(imports)));
} else {
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;
  const names = Object.keys(SETS);
  const mib: number[][] = names.map(() => []);
  // Rounds alternate the sets, so a change of the machine's load falls on all of them.
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < names.length; i++) {
      const out = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--allow-read",
          "--allow-env",
          "--allow-sys",
          new URL(import.meta.url).pathname,
          "--workers",
          String(workers),
          "--one",
          String(i),
        ],
        stderr: "inherit",
      }).output();
      if (!out.success) throw new Error(`measuring "${names[i]}" failed`);
      mib[i]!.push(Number(new TextDecoder().decode(out.stdout).trim()));
    }
  }
  for (let i = 0; i < names.length; i++) {
    const xs = mib[i]!;
    print(
      `${names[i]!.padEnd(60)} ${median(xs).toFixed(1)} MiB per worker ` +
        `(median of ${rounds}, ${Math.min(...xs).toFixed(1)}-${Math.max(...xs).toFixed(1)})`,
    );
  }
}
