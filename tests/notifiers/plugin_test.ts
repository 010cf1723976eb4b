/**
 * The public plugin API (`src/notifiers/plugin.ts`, the package's `./plugin` export) as a plugin author
 * meets it: documented for `deno doc`, imported by its public name, the same module the service runs.
 */
import assert from "node:assert/strict";
import { loadPluginModule } from "../../src/notifiers/load.ts";
import { DeliveryError } from "../../src/notifiers/plugin.ts";
import { captureLogger, pluginContext } from "../helpers/notifiers.ts";

const ROOT = new URL("../../", import.meta.url);
const PUBLIC_NAME = "@sensor-rules/engine/plugin";

async function* pluginFiles(path = "plugins/"): AsyncGenerator<string> {
  for await (const entry of Deno.readDir(new URL(path, ROOT))) {
    if (entry.isDirectory) yield* pluginFiles(`${path}${entry.name}/`);
    else if (entry.name.endsWith(".ts")) yield `${path}${entry.name}`;
  }
}

Deno.test("the plugin API passes deno task doc:lint: every exported symbol is documented and typed", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["task", "-q", "doc:lint"],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, text.slice(0, 4000));
});

Deno.test("every plugin in plugins/ imports the plugin API by its public name, as a user's plugin does", async () => {
  const wrong: string[] = [];
  let files = 0;
  for await (const path of pluginFiles()) {
    files++;
    const source = await Deno.readTextFile(new URL(path, ROOT));
    for (const [, specifier] of source.matchAll(/from\s+"([^"]+)"/g)) {
      if (specifier!.startsWith(".")) wrong.push(`${path} imports "${specifier}"`);
    }
    if (!source.includes(`from "${PUBLIC_NAME}"`)) wrong.push(`${path} does not import "${PUBLIC_NAME}"`);
  }
  assert.ok(files >= 5, `plugins found: ${files}`);
  assert.deepEqual(wrong, []);
});

Deno.test("a plugin outside the project gets the service's own plugin API from its public name", async () => {
  const dir = await Deno.makeTempDir({ prefix: "user-plugin-" });
  try {
    await Deno.writeTextFile(
      `${dir}/refuse.ts`,
      `import { z } from "zod";
import { DeliveryError, defineNotifier } from "${PUBLIC_NAME}";

export default defineNotifier({
  apiVersion: 1,
  name: "refuse",
  options: z.object({}),
  create: () => ({
    notify: () => Promise.reject(new DeliveryError("Refused", { reason: "client", retryable: false })),
  }),
});
`,
    );
    const plugin = await loadPluginModule(`${dir}/refuse.ts`);
    const notifier = await plugin.create({}, pluginContext(captureLogger().logger, "refuse"));
    const ctx = { id: "n-1", signal: new AbortController().signal, attempt: 1 };
    // The service tells a final failure from a retryable one with instanceof: one module, one class.
    await assert.rejects(notifier.notify([], ctx), (err) => err instanceof DeliveryError && !err.retryable);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
