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
