/**
 * The house's floor plan, checked: the import graph of `src/` (and `main.ts`) read from the source text,
 * no network. A module may import one of its own layer or of a layer below, never one above, and no
 * module or room (a folder of `src/`, or a file at its root) may reach itself through imports.
 * Plugins loaded at run time (`import()` of a user's file) are not part of the graph.
 */
import assert from "node:assert/strict";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/**
 * Lowest first. An event goes source → decode → rules → alerts → notifiers; `contract` holds the
 * records they pass on and the helpers every room uses. Rooms of one layer may import each other.
 */
const LAYERS: readonly { name: string; why: string; rooms: readonly string[] }[] = [
  {
    name: "contract",
    why: "shared record types and helpers every room uses (log, env, yaml, file watch, hashes, settings)",
    rooms: [
      "src/contract/",
      "src/env.ts",
      "src/terminal.ts",
      "src/log.ts",
      "src/yaml.ts",
      "src/watch.ts",
      "src/hash.ts",
      // The settings schema: every room reads it, it imports none of them.
      "src/config/",
    ],
  },
  {
    name: "transport",
    why: "how records move: Kafka client, the Output, the in-process queue",
    rooms: ["src/transport/"],
  },
  {
    name: "source",
    why: "where input records come from: Kafka consumer group, NDJSON",
    rooms: ["src/source/"],
  },
  {
    name: "decode",
    why: "bytes → validated event, duplicates, DLQ records, per-sensor statistics",
    rooms: ["src/decode/", "src/dlq/", "src/stats/"],
  },
  {
    name: "alerts",
    why: "an alert episode's life over what a rule observed; knows a rule only by what it reads of it",
    rooms: ["src/alerts/"],
  },
  {
    name: "rules",
    why: "rule files, their compiler, and the engine that feeds the alert lifecycle",
    rooms: ["src/rules/"],
  },
  {
    name: "config",
    why: "the service's settings, with the defaults of the stages below",
    rooms: ["src/config.ts"],
  },
  { name: "notifiers", why: "alerts → receivers: routes, groups, delivery, DLQ", rooms: ["src/notifiers/"] },
  {
    name: "pipeline",
    why: "one batch through the stages, its checkpointed state, and the engine stage around them",
    rooms: ["src/pipeline.ts", "src/state/", "src/engine/"],
  },
  {
    name: "backtest",
    why: "the engine stage over history in event time: rule sets, their episodes, report and diff",
    rooms: ["src/backtest/"],
  },
  {
    name: "top",
    why: "composition roots: the service, the CLI, the HTTP API, the simulator, the engine workers",
    rooms: ["src/service.ts", "src/http/", "src/simulator/", "src/workers/", "main.ts"],
  },
];

/** `import … from "…"`, `export … from "…"` (over several lines too) and `import "…"`. */
const IMPORT = /^\s*(?:import|export)\b[^;"'`]*?\bfrom\s*["']([^"']+)["']|^\s*import\s*["']([^"']+)["']/gm;

async function sourceFiles(): Promise<string[]> {
  const out = ["main.ts"];
  const walk = async (dir: string): Promise<void> => {
    for await (const e of Deno.readDir(join(ROOT, dir))) {
      const path = `${dir}/${e.name}`;
      if (e.isDirectory) await walk(path);
      else if (e.isFile && path.endsWith(".ts")) out.push(path);
    }
  };
  await walk("src");
  return out.sort();
}

/** Module → the relative modules it imports (paths relative to the repository, `/`-separated). */
async function importGraph(): Promise<Map<string, string[]>> {
  const graph = new Map<string, string[]>();
  for (const file of await sourceFiles()) {
    const text = await Deno.readTextFile(join(ROOT, file));
    const deps = new Set<string>();
    for (const m of text.matchAll(IMPORT)) {
      const spec = m[1] ?? m[2]!;
      if (!spec.startsWith(".")) continue;
      deps.add(relative(ROOT, join(ROOT, file, "..", spec)).replaceAll("\\", "/"));
    }
    graph.set(file, [...deps].sort());
  }
  return graph;
}

function roomOf(file: string): string {
  const m = /^src\/([^/]+\/)/.exec(file);
  return m === null ? file : `src/${m[1]}`;
}

function layerOf(file: string): number {
  const room = roomOf(file);
  const i = LAYERS.findIndex((l) => l.rooms.includes(room));
  if (i < 0) throw new Error(`"${room}" is in no layer: add it to LAYERS in tests/contract/layers_test.ts`);
  return i;
}

/** Every cycle of a graph, as its strongly connected components of more than one node (or a self-loop). */
function cycles(graph: Map<string, readonly string[]>): string[][] {
  // Tarjan's algorithm; recursion depth is bounded by the number of modules (about 100).
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  let next = 0;
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) !== index.get(v)) return;
    const scc: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      scc.push(w);
    } while (w !== v);
    if (scc.length > 1 || (graph.get(v) ?? []).includes(v)) found.push(scc.sort());
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) visit(v);
  return found;
}

Deno.test("layers: cycles() finds a cycle and only the modules on it", () => {
  const g = new Map([["a", ["b"]], ["b", ["c"]], ["c", ["a"]], ["d", ["a"]]]);
  assert.deepEqual(cycles(g), [["a", "b", "c"]]);
  assert.deepEqual(cycles(new Map([["a", ["b"]], ["b", []]])), []);
});

Deno.test("layers: every module of src/ lies in a layer", async () => {
  const unplaced = [...(await importGraph()).keys()].filter((f) => {
    try {
      layerOf(f);
      return false;
    } catch {
      return true;
    }
  });
  assert.deepEqual(unplaced, []);
});

Deno.test("layers: no module imports one of a higher layer", async () => {
  const upward: string[] = [];
  for (const [file, deps] of await importGraph()) {
    for (const dep of deps) {
      const from = layerOf(file);
      const to = layerOf(dep);
      if (to > from) upward.push(`${file} (${LAYERS[from]!.name}) imports ${dep} (${LAYERS[to]!.name})`);
    }
  }
  assert.deepEqual(upward, []);
});

Deno.test("layers: no import cycle between modules", async () => {
  assert.deepEqual(cycles(await importGraph()), []);
});

Deno.test("layers: no import cycle between rooms (folders of src/, files at its root)", async () => {
  const rooms = new Map<string, Set<string>>();
  for (const [file, deps] of await importGraph()) {
    const from = roomOf(file);
    const set = rooms.get(from) ?? new Set<string>();
    rooms.set(from, set);
    for (const dep of deps) if (roomOf(dep) !== from) set.add(roomOf(dep));
  }
  assert.deepEqual(cycles(new Map([...rooms].map(([k, v]) => [k, [...v]]))), []);
});
