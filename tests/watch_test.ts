/**
 * The file-system watcher against real directories: a Kubernetes ConfigMap update (`..data` symlink
 * swapped to a new timestamped directory) and a directory replaced by rename and copy. Each test waits
 * for the reload it expects, bounded, never for a fixed time.
 */
import assert from "node:assert/strict";
import { RuleRegistry } from "../src/rules/registry.ts";
import { type RulesChanged, watchDirectory, type Watcher, watchFile } from "../src/watch.ts";

const rules = (max: number) =>
  `rules:\n  - { id: co2, sensor_type: co2, threshold: { max: ${max} }, priority: critical }\n`;

/** Reloads `registry` on every change; `until(max)` resolves once the rule in force has that max. */
function reloadOnChange(dir: string, registry: RuleRegistry, resyncMs?: number) {
  const seen: RulesChanged[] = [];
  const waiters: { max: number; resolve: () => void }[] = [];
  const check = () => {
    const max = registry.ruleSet.byId.get("co2")?.rule.threshold?.max;
    for (const w of [...waiters]) {
      if (w.max === max) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    }
  };
  const watcher: Watcher = watchDirectory(dir, (e) => {
    seen.push(e);
    registry.reload().then(check);
  }, resyncMs === undefined ? {} : { resyncMs });
  return {
    watcher,
    seen,
    until(max: number, timeoutMs = 20_000): Promise<void> {
      let timer: ReturnType<typeof setTimeout> | undefined;
      return Promise.race([
        new Promise<void>((resolve) => {
          waiters.push({ max, resolve });
          check();
        }),
        new Promise<void>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`No reload to max ${max} within ${timeoutMs} ms`)),
            timeoutMs,
          );
        }),
      ]).finally(() => clearTimeout(timer));
    },
  };
}

Deno.test("watchDirectory() picks up a ConfigMap-style ..data swap and keeps watching", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rules-configmap-" });
  const version = async (name: string, max: number) => {
    await Deno.mkdir(`${dir}/${name}`);
    await Deno.writeTextFile(`${dir}/${name}/co2.yaml`, rules(max));
  };
  // What the kubelet does: files are symlinks through `..data`, which points at a timestamped
  // directory and is replaced atomically by renaming a new symlink over it.
  const swap = async (name: string, old: string) => {
    await Deno.symlink(name, `${dir}/..data_tmp`);
    await Deno.rename(`${dir}/..data_tmp`, `${dir}/..data`);
    await Deno.remove(`${dir}/${old}`, { recursive: true });
  };
  await version("..2026_11_30_10_00_00.1", 1000);
  await Deno.symlink("..2026_11_30_10_00_00.1", `${dir}/..data`);
  await Deno.symlink("..data/co2.yaml", `${dir}/co2.yaml`);
  const registry = new RuleRegistry(dir);
  assert.deepEqual((await registry.reload()).problems, []);
  const w = reloadOnChange(dir, registry);
  try {
    await version("..2026_11_30_10_05_00.2", 800);
    await swap("..2026_11_30_10_05_00.2", "..2026_11_30_10_00_00.1");
    await w.until(800);
    await version("..2026_11_30_10_10_00.3", 600);
    await swap("..2026_11_30_10_10_00.3", "..2026_11_30_10_05_00.2");
    await w.until(600);
    assert.deepEqual(registry.problems(), []);
  } finally {
    w.watcher.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("watchDirectory() keeps watching a directory replaced by rename and copy", async () => {
  const parent = await Deno.makeTempDir({ prefix: "rules-swap-" });
  const dir = `${parent}/rules`;
  await Deno.mkdir(dir);
  await Deno.writeTextFile(`${dir}/co2.yaml`, rules(1000));
  const registry = new RuleRegistry(dir);
  await registry.reload();
  const w = reloadOnChange(dir, registry, 50);
  try {
    await Deno.rename(dir, `${parent}/rules.old`);
    await Deno.mkdir(dir);
    await Deno.writeTextFile(`${dir}/co2.yaml`, rules(900));
    await w.until(900);
    assert.ok(w.seen.some((e) => e.rewatched), "the swap is reported as such");
    // The new directory is the one watched now: an edit in it is a reload.
    await Deno.writeTextFile(`${dir}/co2.yaml`, rules(700));
    await w.until(700);
  } finally {
    w.watcher.close();
    await Deno.remove(parent, { recursive: true });
  }
});

Deno.test("watchDirectory() follows a symlinked file whose target is edited in place", async () => {
  const parent = await Deno.makeTempDir({ prefix: "rules-link-" });
  const dir = `${parent}/rules`;
  await Deno.mkdir(dir);
  await Deno.mkdir(`${parent}/shared`);
  await Deno.writeTextFile(`${parent}/shared/co2-rules.yaml`, rules(1000));
  await Deno.symlink(`${parent}/shared/co2-rules.yaml`, `${dir}/co2.yaml`);
  const registry = new RuleRegistry(dir);
  await registry.reload();
  const w = reloadOnChange(dir, registry);
  try {
    await Deno.writeTextFile(`${parent}/shared/co2-rules.yaml`, rules(500));
    await w.until(500);
    assert.ok([...w.seen.at(-1)!.paths].every((p) => p.startsWith(`${dir}/`)), "paths are the ones in dir");
  } finally {
    w.watcher.close();
    await Deno.remove(parent, { recursive: true });
  }
});

Deno.test("watchFile() reports a ConfigMap update of the file it watches", async () => {
  const dir = await Deno.makeTempDir({ prefix: "notifiers-configmap-" });
  await Deno.mkdir(`${dir}/..v1`);
  await Deno.writeTextFile(`${dir}/..v1/notifiers.yaml`, "notifiers: []\n");
  await Deno.symlink("..v1", `${dir}/..data`);
  await Deno.symlink("..data/notifiers.yaml", `${dir}/notifiers.yaml`);
  let calls = 0;
  const waiters: { calls: number; resolve: () => void }[] = [];
  const called = (n: number) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    return Promise.race([
      new Promise<void>((resolve) => {
        waiters.push({ calls: n, resolve });
        if (calls >= n) resolve();
      }),
      new Promise<void>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`Fewer than ${n} call(s) within 20000 ms`)), 20_000);
      }),
    ]).finally(() => clearTimeout(timer));
  };
  const watcher = watchFile(`${dir}/notifiers.yaml`, () => {
    calls++;
    for (const w of waiters) if (calls >= w.calls) w.resolve();
  }, 50);
  try {
    // The first check reports a symlinked file once: its target may have changed before it was watched.
    await called(1);
    await Deno.mkdir(`${dir}/..v2`);
    await Deno.writeTextFile(`${dir}/..v2/notifiers.yaml`, "notifiers: [console]\n");
    await Deno.symlink("..v2", `${dir}/..data_tmp`);
    await Deno.rename(`${dir}/..data_tmp`, `${dir}/..data`);
    await called(2);
  } finally {
    watcher.close();
    await Deno.remove(dir, { recursive: true });
  }
});
