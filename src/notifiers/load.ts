import type { Logger } from "../log.ts";
import { registerSecret } from "../log.ts";
import { type Notifier, type NotifierPlugin, PLUGIN_API_VERSION, type PluginContext } from "./plugin.ts";
import { type FileStamp, sameStamp, statRuleFile } from "../rules/load.ts";

/** How long a plugin may take to load (its module's top-level code), and its `create()`. */
export const PLUGIN_TIMEOUT_MS = 10_000;

/** A plugin module, by the name it declares, and where it came from. */
export interface LoadedPlugin {
  plugin: NotifierPlugin;
  source: string;
}

function moduleUrl(path: string): string {
  if (/^(file|https?|npm|jsr):/.test(path)) return path;
  return new URL(path, `file://${Deno.cwd()}/`).href;
}

/**
 * Plugin modules whose import did not settle in time, by URL, with the version of the file that hung
 * (null: not a local file). Deno keeps the pending module under its URL for the life of the process:
 * importing that URL again would wait for the same evaluation, so a hung module counts as failed at
 * once until its file changes, and the changed file is imported under a URL of its own (`?v=`).
 */
const hung = new Map<string, FileStamp | null>();
/** The URL a module is imported under, when a later version of a file that hung replaced it. */
const versions = new Map<string, string>();

async function stampOf(url: string): Promise<FileStamp | null> {
  if (!url.startsWith("file:")) return null;
  try {
    return await statRuleFile(decodeURIComponent(new URL(url).pathname));
  } catch {
    return null;
  }
}

/**
 * The plugin each imported module URL is (its declared name once it checked out, its path before),
 * and the plugin directories: an error whose stack runs through them is a plugin's (`src/notifiers/unhandled.ts`).
 */
const pluginModules = new Map<string, string>();
const pluginDirs = new Map<string, string>();

/** The plugin a module URL (without its query) belongs to, by name or file; null when none. */
export function pluginOfUrl(url: string): string | null {
  const known = pluginModules.get(url);
  if (known !== undefined) return known;
  for (const [dirUrl, dir] of pluginDirs) {
    if (url.startsWith(dirUrl)) return `${dir}/${decodeURIComponent(url.slice(dirUrl.length))}`;
  }
  return null;
}

/** The module, unless its top-level code does not finish within `timeoutMs` (an `await` that never settles). */
async function importWithin(path: string, timeoutMs: number): Promise<Record<string, unknown>> {
  const url = moduleUrl(path);
  const seconds = timeoutMs / 1000;
  let specifier = versions.get(url) ?? url;
  if (hung.has(url)) {
    const stamp = await stampOf(url);
    if (stamp === null || sameStamp(hung.get(url)!, stamp)) {
      throw new Error(
        `it did not finish loading within ${seconds} s and has not changed since; change the file or restart`,
      );
    }
    specifier = `${url}?v=${stamp.mtimeMs}-${stamp.size}-${stamp.ino ?? 0}`;
    hung.delete(url);
    versions.set(url, specifier);
  }
  // Before the import: its top-level code may start work that fails later, named after it.
  if (!pluginModules.has(url)) pluginModules.set(url, path);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = Symbol("late");
  try {
    const mod = await Promise.race([
      import(specifier) as Promise<Record<string, unknown>>,
      new Promise<typeof late>((resolve) => timer = setTimeout(() => resolve(late), timeoutMs)),
    ]);
    if (mod !== late) return mod;
    // Stamped now, after the wait: a file saved while it hung gets its own try at the next load.
    hung.set(url, await stampOf(url));
    throw new Error(`it did not finish loading within ${seconds} s (a top-level await that never settles?)`);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Imports one module and checks its default export against plugin API v1; its top-level code may not
 * take longer than `timeoutMs`. Throws TypeError naming the file.
 */
export async function loadPluginModule(path: string, timeoutMs = PLUGIN_TIMEOUT_MS): Promise<NotifierPlugin> {
  let mod: Record<string, unknown>;
  try {
    mod = await importWithin(path, timeoutMs);
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
  const plugin = p as NotifierPlugin;
  pluginModules.set(moduleUrl(path), plugin.name);
  return plugin;
}

/**
 * The plugins of `dir` (its `*.ts` / `*.js` files, not those starting with `_`) and of `paths`, by
 * declared name. A module that fails to load is reported in `problems`, not fatal.
 */
export async function discoverPlugins(
  dir: string,
  paths: readonly string[] = [],
  timeoutMs = PLUGIN_TIMEOUT_MS,
): Promise<{ plugins: Map<string, LoadedPlugin>; problems: string[] }> {
  const files: string[] = [];
  pluginDirs.set(
    new URL(`${dir.replace(/\/+$/, "")}/`, `file://${Deno.cwd()}/`).href,
    dir.replace(/\/+$/, ""),
  );
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
      const plugin = await loadPluginModule(source, timeoutMs);
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
  timeoutMs = PLUGIN_TIMEOUT_MS,
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
