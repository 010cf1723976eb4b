import type { Logger } from "../log.ts";
import { registerSecret } from "../log.ts";
import { type Notifier, type NotifierPlugin, PLUGIN_API_VERSION, type PluginContext } from "./plugin.ts";

/** A plugin module, by the name it declares, and where it came from. */
export interface LoadedPlugin {
  plugin: NotifierPlugin;
  source: string;
}

function moduleUrl(path: string): string {
  if (/^(file|https?|npm|jsr):/.test(path)) return path;
  return new URL(path, `file://${Deno.cwd()}/`).href;
}

/** Imports one module and checks its default export against plugin API v1. Throws TypeError naming the file. */
export async function loadPluginModule(path: string): Promise<NotifierPlugin> {
  let mod: Record<string, unknown>;
  try {
    mod = await import(moduleUrl(path));
  } catch (err) {
    throw new TypeError(`Cannot load plugin "${path}": ${(err as Error).message}`, { cause: err });
  }
  const p = mod.default as Partial<NotifierPlugin> | undefined;
  const problem = p === undefined || p === null || typeof p !== "object"
    ? "has no default export (use `export default defineNotifier({...})`)"
    : p.apiVersion !== PLUGIN_API_VERSION
    ? `declares apiVersion ${JSON.stringify(p.apiVersion)}, this service speaks ${PLUGIN_API_VERSION}`
    : typeof p.name !== "string" || p.name === ""
    ? 'has no "name"'
    : typeof (p.options as { safeParse?: unknown } | undefined)?.safeParse !== "function"
    ? '"options" is not a zod schema'
    : typeof p.create !== "function"
    ? 'has no "create" function'
    : null;
  if (problem !== null) throw new TypeError(`Plugin "${path}" ${problem}`);
  return p as NotifierPlugin;
}

/**
 * The plugins of `dir` (its `*.ts` / `*.js` files, not those starting with `_`) and of `paths`, by
 * declared name. A module that fails to load is reported in `problems`, not fatal.
 */
export async function discoverPlugins(
  dir: string,
  paths: readonly string[] = [],
): Promise<{ plugins: Map<string, LoadedPlugin>; problems: string[] }> {
  const files: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      if (e.isFile && /\.[jt]s$/.test(e.name) && !e.name.startsWith("_")) files.push(`${dir}/${e.name}`);
    }
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  const plugins = new Map<string, LoadedPlugin>();
  const problems: string[] = [];
  for (const source of [...files.sort(), ...paths]) {
    try {
      const plugin = await loadPluginModule(source);
      const taken = plugins.get(plugin.name);
      if (taken !== undefined && taken.source !== source) {
        problems.push(
          `Plugin "${source}" declares name "${plugin.name}", already taken by "${taken.source}"`,
        );
        continue;
      }
      plugins.set(plugin.name, { plugin, source });
    } catch (err) {
      problems.push((err as Error).message);
    }
  }
  return { plugins, problems };
}

/** True when a `plugin:` value in YAML is a path rather than a declared name. */
export function isPluginPath(ref: string): boolean {
  return ref.includes("/") || /\.[jt]s$/.test(ref);
}

/**
 * Validates `options` with the plugin's schema and calls its factory, which may not take longer
 * than `timeoutMs`. Throws TypeError naming the instance and the field.
 */
export async function createNotifier(
  plugin: NotifierPlugin,
  instance: string,
  options: unknown,
  logger: Logger,
  timeoutMs = 10_000,
  deadLetter: PluginContext["deadLetter"] = () =>
    Promise.reject(new Error("No dead-letter queue is configured for this notifier")),
): Promise<Notifier> {
  const parsed = plugin.options.safeParse(options);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const field = issue.path.length > 0 ? `option "${issue.path.map(String).join(".")}"` : "options";
    throw new TypeError(`Notifier "${instance}" (plugin "${plugin.name}"): ${field}: ${issue.message}`, {
      cause: parsed.error,
    });
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const notifier = await Promise.race([
      Promise.resolve(plugin.create(parsed.data, {
        name: instance,
        logger: logger.child({ notifier: instance }),
        registerSecret,
        deadLetter,
      })),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new Error(`Plugin "${plugin.name}" did not create notifier "${instance}" in ${timeoutMs} ms`),
            ),
          timeoutMs,
        );
      }),
    ]);
    if (typeof notifier?.notify !== "function") {
      throw new TypeError(`Plugin "${plugin.name}": create() returned no "notify" function`);
    }
    return notifier;
  } catch (err) {
    if (err instanceof TypeError && err.message.startsWith("Plugin ")) throw err;
    throw new TypeError(`Notifier "${instance}" (plugin "${plugin.name}"): ${(err as Error).message}`, {
      cause: err,
    });
  } finally {
    clearTimeout(timer);
  }
}
