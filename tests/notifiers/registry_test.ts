import assert from "node:assert/strict";
import { NotifierRegistry } from "../../src/notifiers/registry.ts";
import { captureLogger } from "../helpers/notifiers.ts";

async function tempDir(): Promise<string> {
  await Deno.mkdir("tests/artifacts", { recursive: true });
  return await Deno.makeTempDir({ dir: "tests/artifacts", prefix: "notifiers-" });
}

Deno.test("NotifierRegistry without a file runs console only", async () => {
  const dir = await tempDir();
  const r = new NotifierRegistry({
    file: `${dir}/notifiers.yaml`,
    pluginsDir: "plugins",
    logger: captureLogger().logger,
  });
  const set = await r.load();
  assert.deepEqual([...set.instances.keys()], ["console", "dlq"], "the dead-letter notifier always exists");
  assert.deepEqual(set.config.default_receivers, ["console"]);
  await r.close();
});

Deno.test("NotifierRegistry names the instance and field of invalid plugin options", async () => {
  const dir = await tempDir();
  const file = `${dir}/notifiers.yaml`;
  await Deno.writeTextFile(
    file,
    "notifiers:\n  - name: hook\n    plugin: webhook\n    options:\n      url: not-a-url\n",
  );
  const r = new NotifierRegistry({ file, pluginsDir: "plugins", logger: captureLogger().logger });
  await assert.rejects(r.load(), (e: Error) => {
    assert.match(e.message, /notifiers\.yaml:5:12 Notifier "hook" \(plugin "webhook"\): option "url": /);
    return true;
  });
});

Deno.test("NotifierRegistry rejects an unknown plugin and a module that is not a plugin", async () => {
  const dir = await tempDir();
  const file = `${dir}/notifiers.yaml`;
  await Deno.writeTextFile(file, "notifiers:\n  - name: x\n    plugin: carrier-pigeon\n");
  const r = new NotifierRegistry({ file, pluginsDir: "plugins", logger: captureLogger().logger });
  await assert.rejects(
    r.load(),
    /:3:13 Notifier "x": unknown plugin "carrier-pigeon" \(known: console, dlq, slack, webhook\)/,
  );
  await Deno.writeTextFile(`${dir}/not_a_plugin.ts`, "export default { name: 'x' };\n");
  await Deno.writeTextFile(file, `notifiers:\n  - name: x\n    plugin: ${dir}/not_a_plugin.ts\n`);
  await assert.rejects(r.load(), /declares apiVersion undefined, this service speaks 1/);
});

Deno.test("NotifierRegistry hot-reloads the file and keeps the last good configuration when it breaks", async () => {
  const dir = await tempDir();
  const file = `${dir}/notifiers.yaml`;
  await Deno.writeTextFile(file, "routes: []\n");
  const { logger, lines } = captureLogger();
  const r = new NotifierRegistry({ file, pluginsDir: "plugins", logger });
  await r.load();
  r.watch();
  try {
    await Deno.writeTextFile(
      file,
      "notifiers:\n  - name: hook\n    plugin: webhook\n    options: { url: http://127.0.0.1:9/h }\nroutes:\n  - receivers: [hook]\n",
    );
    await waitUntil(() => r.set.instances.has("hook"));
    await Deno.writeTextFile(file, "routes:\n  - receivers: [nobody]\n");
    await waitUntil(() => !r.status().current);
    assert.ok(r.set.instances.has("hook"), "the last good set stays in effect");
    assert.match(r.status().problems[0]!, /notifiers\.yaml:2:17 .*Unknown notifier "nobody"/);
    assert.ok(lines.some((l) => l.includes("keeping the last good one")));
  } finally {
    await r.close();
  }
});

async function waitUntil(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 100 && !cond(); i++) await new Promise((r) => setTimeout(r, 50));
  assert.ok(cond(), "condition not met within 5 s");
}

/** `load` settled within `ms`, or a failure saying it did not: a hung read must fail the test, not hang it. */
async function settledWithin<T>(p: Promise<T>, ms: number): Promise<PromiseSettledResult<T>> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hung = new Promise<"hung">((resolve) => timer = setTimeout(() => resolve("hung"), ms));
  const result = await Promise.race([
    p.then(
      (value) => ({ status: "fulfilled", value }) as const,
      (reason) => ({ status: "rejected", reason }) as const,
    ),
    hung,
  ]);
  clearTimeout(timer);
  assert.notEqual(result, "hung", `load did not settle within ${ms} ms`);
  return result as PromiseSettledResult<T>;
}

Deno.test("NotifierRegistry refuses a notifiers.yaml over the size limit, naming the file, and keeps the last good one", async () => {
  const dir = await tempDir();
  const file = `${dir}/notifiers.yaml`;
  await Deno.writeTextFile(file, "routes: []\n");
  const r = new NotifierRegistry({ file, pluginsDir: "plugins", logger: captureLogger().logger });
  await r.load();
  // 20,000 routes (1.26 MB) took 3.1 s to parse, synchronously, before the limit.
  const big = "routes:\n" + "  - { match: { rule_id: some-rule-id }, receivers: [console] }\n".repeat(20_000);
  await Deno.writeTextFile(file, big);
  const result = await settledWithin(r.load(), 20_000);
  assert.equal(result.status, "rejected");
  assert.match(
    (result as PromiseRejectedResult).reason.message,
    new RegExp(`notifiers\\.yaml:1:1 File is ${big.length} bytes, over the limit of 262144 bytes`),
  );
  assert.equal(r.status().current, false);
  assert.equal(r.status().errors[0]!.file, file);
  assert.ok(r.set.instances.has("console"), "the last good set stays in effect");
  await r.close();
});

Deno.test("NotifierRegistry refuses a FIFO or a symlink to /dev/zero as notifiers.yaml instead of reading it for ever", async () => {
  const dir = await tempDir();
  const file = `${dir}/notifiers.yaml`;
  const mkfifo = await new Deno.Command("mkfifo", { args: [file] }).output();
  assert.equal(mkfifo.code, 0, new TextDecoder().decode(mkfifo.stderr));
  const r = new NotifierRegistry({ file, pluginsDir: "plugins", logger: captureLogger().logger });
  const fifo = await settledWithin(r.load(), 10_000);
  assert.equal(fifo.status, "rejected");
  assert.match((fifo as PromiseRejectedResult).reason.message, /notifiers\.yaml:1:1 Not a regular file/);
  await Deno.remove(file);
  await Deno.symlink("/dev/zero", file);
  const zero = await settledWithin(r.load(), 10_000);
  assert.equal(zero.status, "rejected");
  assert.match((zero as PromiseRejectedResult).reason.message, /notifiers\.yaml:1:1 Not a regular file/);
  await r.close();
});

Deno.test("NotifierRegistry closes every replaced instance when a plugin's close() returns no promise", async () => {
  const dir = await tempDir();
  const closed: string[] = [];
  (globalThis as { __syncCloseLog?: string[] }).__syncCloseLog = closed;
  await Deno.writeTextFile(
    `${dir}/sync_close.ts`,
    `import { z } from "zod";
import { defineNotifier } from "@sensor-rules/engine/plugin";
export default defineNotifier({
  apiVersion: 1,
  name: "sync-close",
  options: z.object({}),
  create: (_opts, ctx) => ({
    notify: () => Promise.resolve(),
    // A JS plugin may close synchronously and return nothing.
    close() {
      (globalThis as { __syncCloseLog?: string[] }).__syncCloseLog?.push(ctx.name);
    },
  }) as never,
});
`,
  );
  const file = `${dir}/notifiers.yaml`;
  await Deno.writeTextFile(
    file,
    `notifiers:\n  - { name: a, plugin: ${dir}/sync_close.ts }\n  - { name: b, plugin: ${dir}/sync_close.ts }\n`,
  );
  const r = new NotifierRegistry({ file, pluginsDir: "plugins", logger: captureLogger().logger });
  await r.load();
  await Deno.writeTextFile(file, "routes: []\n");
  await r.load();
  assert.equal(r.status().current, true, r.status().problems.join("; "));
  assert.deepEqual(closed.sort(), ["a", "b"]);
  await r.close();
});

/** A plugin module named `name`; `prelude` is top-level code run when it is imported. */
function pluginSource(name: string, prelude = ""): string {
  return `import { z } from "zod";
import { defineNotifier } from "@sensor-rules/engine/plugin";
${prelude}
export default defineNotifier({
  apiVersion: 1,
  name: "${name}",
  options: z.object({}),
  create: () => ({ notify: () => Promise.resolve() }),
});
`;
}

/**
 * A top-level await that settles only when the test says so, after its asserts: one that never settles
 * would end the test runner ("Top-level await promise never resolved") once its event loop is idle.
 * The service's never is (its HTTP server listens).
 */
function hangUntilReleased(key: string): { prelude: string; release: () => void } {
  return {
    prelude: `await new Promise((resolve) => ((globalThis as Record<string, unknown>)["${key}"] = resolve));`,
    release: () => ((globalThis as Record<string, unknown>)[key] as (() => void) | undefined)?.(),
  };
}

/** The built-in plugins every configuration has (console, dlq), in a plugins directory of a test's own. */
async function builtIns(pluginsDir: string): Promise<void> {
  await Deno.mkdir(pluginsDir, { recursive: true });
  for (const name of ["console.ts", "dlq.ts"]) {
    await Deno.copyFile(`plugins/${name}`, `${pluginsDir}/${name}`);
  }
}

Deno.test("NotifierRegistry skips a plugin whose top-level await never settles, and loads it once its file changed", async () => {
  const dir = await tempDir();
  const pluginsDir = `${dir}/plugins`;
  await builtIns(pluginsDir);
  await Deno.writeTextFile(`${pluginsDir}/good.ts`, pluginSource("good"));
  const hang = hangUntilReleased("__hangInDir");
  await Deno.writeTextFile(`${pluginsDir}/hang.ts`, pluginSource("hang", hang.prelude));
  const file = `${dir}/notifiers.yaml`;
  await Deno.writeTextFile(file, "notifiers:\n  - { name: g, plugin: good }\n");
  const { logger, lines } = captureLogger();
  const r = new NotifierRegistry({ file, pluginsDir, logger, pluginTimeoutMs: 300 });
  try {
    const first = await settledWithin(r.load(), 20_000);
    assert.equal(first.status, "fulfilled", String((first as PromiseRejectedResult).reason));
    assert.ok(r.set.instances.has("g"));
    const problem = (l: string) => l.includes(`hang.ts`) && l.includes("did not finish loading within 0.3 s");
    assert.equal(lines.filter(problem).length, 1, lines.join("\n"));

    // Deno keeps the pending module under its URL: a reload neither waits for it again nor hangs.
    const second = await settledWithin(r.load(), 20_000);
    assert.equal(second.status, "fulfilled");
    assert.ok(
      lines.some((l) => l.includes("hang.ts") && l.includes("has not changed since")),
      lines.join("\n"),
    );

    await Deno.writeTextFile(`${pluginsDir}/hang.ts`, pluginSource("hang"));
    await Deno.writeTextFile(
      file,
      "notifiers:\n  - { name: g, plugin: good }\n  - { name: h, plugin: hang }\n",
    );
    const third = await settledWithin(r.load(), 20_000);
    assert.equal(third.status, "fulfilled", String((third as PromiseRejectedResult).reason));
    assert.deepEqual(r.status().notifiers.map((n) => n.name), ["g", "h", "console", "dlq"]);
  } finally {
    hang.release();
    await r.close();
  }
});

Deno.test("NotifierRegistry refuses a notifier whose plugin path never finishes loading, naming file and line", async () => {
  const dir = await tempDir();
  const hang = hangUntilReleased("__hangByPath");
  await Deno.writeTextFile(`${dir}/hang.ts`, pluginSource("hang-by-path", hang.prelude));
  const file = `${dir}/notifiers.yaml`;
  await Deno.writeTextFile(file, `notifiers:\n  - { name: h, plugin: ${dir}/hang.ts }\n`);
  const r = new NotifierRegistry({
    file,
    pluginsDir: `${dir}/none`,
    logger: captureLogger().logger,
    pluginTimeoutMs: 300,
  });
  try {
    const result = await settledWithin(r.load(), 20_000);
    assert.equal(result.status, "rejected");
    assert.match(
      (result as PromiseRejectedResult).reason.message,
      /notifiers\.yaml:2:\d+ .*hang\.ts.* did not finish loading within 0\.3 s/,
    );
    assert.equal(r.status().current, false);
  } finally {
    hang.release();
  }
});
