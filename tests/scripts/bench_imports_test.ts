import assert from "node:assert/strict";

const ROOT = new URL("../../", import.meta.url);

interface ModuleInfo {
  specifier: string;
  dependencies?: { code?: { specifier?: string }; type?: { specifier?: string } }[];
}

/** The import cycles among the project's own modules in the graph of `entry`, as paths. */
async function cycles(entry: string): Promise<string[]> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", entry],
    cwd: ROOT,
    stdout: "piped",
    stderr: "inherit",
  }).output();
  assert.equal(out.code, 0, `deno info ${entry}`);
  const modules: ModuleInfo[] = JSON.parse(new TextDecoder().decode(out.stdout)).modules;
  const own = (s: string | undefined): s is string => s !== undefined && s.startsWith(ROOT.href);
  const edges = new Map<string, string[]>();
  for (const m of modules.filter((m) => own(m.specifier))) {
    const deps = (m.dependencies ?? []).flatMap((d) => [d.code?.specifier, d.type?.specifier]).filter(own);
    edges.set(m.specifier, [...new Set(deps)]);
  }
  const found: string[] = [];
  const state = new Map<string, "open" | "done">();
  const visit = (u: string, path: string[]) => {
    state.set(u, "open");
    for (const v of edges.get(u) ?? []) {
      if (state.get(v) === "open") {
        found.push([...path.slice(path.indexOf(v)), u, v].map((s) => s.slice(ROOT.href.length)).join(" -> "));
      } else if (state.get(v) === undefined) visit(v, [...path, u]);
    }
    state.set(u, "done");
  };
  for (const u of edges.keys()) if (state.get(u) === undefined) visit(u, []);
  return found;
}

Deno.test("the bench's modules import each other without a cycle", async () => {
  assert.deepEqual(await cycles("scripts/bench/main.ts"), []);
});
