/**
 * The main thread's last word on an error nobody handled: an unhandled promise rejection or an
 * exception thrown from a callback (a timer). Deno's default ends the process with a stack trace on
 * stderr, which let one notifier plugin's stray promise take the engine down with it.
 *
 * The origin decides, from the files in the error's stack:
 * - **the service's own code** (`main.ts`, `src/`): a bug. The process ends with exit code 1 and one
 *   log line, as before but said in the log, redacted.
 * - **a plugin module** (or a file in a plugins directory): logged, counted in
 *   `sensor_unhandled_errors_total{plugin,kind}`, and the service keeps running. A plugin runs in this
 *   process; its stray promise has no caller to fail, and the other receivers and the engine are not its.
 * - **no file of either** (a rejection with a string, an un-awaited `fetch` whose stack has only
 *   Deno's internals): treated as a plugin's (plugin `unknown`). Plugins are the code here that is
 *   not held to the service's rule of no unhandled rejection, and such a rejection carries no trace of
 *   who dropped it; ending the engine for it is what this module is here to stop.
 *
 * Counted exactly; each distinct error (plugin, kind and text) is logged at its 1st, 10th, 100th, …
 * occurrence, so a plugin that leaves a stray rejection per notification cannot flood the log.
 *
 * @module
 */
import type { Logger } from "../log.ts";
import { pluginOfUrl } from "./load.ts";

export type UnhandledKind = "rejection" | "exception";

/** Where an unhandled error came from; `plugin` names the plugin, or its file, or `unknown`. */
export type Origin = { by: "service"; at: string } | { by: "plugin"; plugin: string; at: string | null };

/** The service's own modules: a frame in them makes the error the service's bug. */
const ROOT = new URL("../../", import.meta.url).href;
/** The public plugin API runs on a plugin's behalf: its frames alone do not make an error the service's. */
const PLUGIN_API = new URL("./plugin.ts", import.meta.url).href;

/** Unhandled errors kept running since start, by kind and plugin (`kind\u0000plugin`). */
const counts = new Map<string, number>();
/** Occurrences of each distinct error, for the log; forgotten past `MAX_DISTINCT`, which logs some again. */
const seen = new Map<string, number>();
const MAX_DISTINCT = 1_000;

/** The counts for `/metrics`: kind, plugin, count. */
export function unhandledCounts(): { kind: UnhandledKind; plugin: string; count: number }[] {
  return [...counts].map(([key, count]) => {
    const [kind, plugin] = key.split("\u0000") as [UnhandledKind, string];
    return { kind, plugin, count };
  });
}

/** The `file://` URLs of a stack's frames, without a cache-busting query, with their `line:col`. */
function frames(stack: string): { url: string; at: string }[] {
  const out: { url: string; at: string }[] = [];
  for (const m of stack.matchAll(/(file:\/\/[^\s()?]+)(?:\?[^\s():]*)?:(\d+):(\d+)/g)) {
    // A handler that threw here would be the crash it is here to prevent: a URL it cannot read stays as is.
    let path = m[1]!;
    try {
      path = decodeURIComponent(new URL(m[1]!).pathname);
    } catch { /* kept as written */ }
    out.push({ url: m[1]!, at: `${path}:${m[2]}:${m[3]}` });
  }
  return out;
}

/** The origin of `error`, by the first plugin frame of its stack, else the first of the service's own. */
export function originOf(error: unknown): Origin {
  const stack = error instanceof Error ? String(error.stack ?? "") : "";
  const all = frames(stack);
  for (const f of all) {
    const plugin = pluginOfUrl(f.url);
    if (plugin !== null) return { by: "plugin", plugin, at: f.at };
  }
  const own = all.find((f) =>
    f.url !== PLUGIN_API && (f.url === `${ROOT}main.ts` || f.url.startsWith(`${ROOT}src/`))
  );
  return own === undefined ? { by: "plugin", plugin: "unknown", at: null } : { by: "service", at: own.at };
}

function describe(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  const text = typeof error === "string" ? error : Deno.inspect(error, { depth: 2, colors: false });
  return text.length > 500 ? `${text.slice(0, 500)}…` : text;
}

export interface UnhandledOptions {
  logger: Logger;
  /** False until the service is up: the fatal line then reads "Cannot start: …". */
  started: () => boolean;
  exit: (code: number) => void;
}

/**
 * What to do with one unhandled error; true when the process keeps running (the event's default,
 * Deno's exit with a trace, is then prevented). Exported for the tests, which cannot end their process.
 */
export function onUnhandled(kind: UnhandledKind, error: unknown, opts: UnhandledOptions): boolean {
  const what = kind === "rejection" ? "Unhandled promise rejection" : "Uncaught exception";
  const origin = originOf(error);
  if (origin.by === "service") {
    const line = `${what} in the service's own code (a bug): ${describe(error)}`;
    // One line, as every failed start or stop: the location says where, the stack is not needed.
    if (opts.started()) opts.logger.error(`${line}; exiting`, { at: origin.at });
    else opts.logger.error(`Cannot start: ${line}`, { at: origin.at });
    opts.exit(1);
    return false;
  }
  const key = `${kind}\u0000${origin.plugin}`;
  counts.set(key, (counts.get(key) ?? 0) + 1);
  const text = describe(error);
  const distinct = `${key}\u0000${text}`;
  if (!seen.has(distinct) && seen.size >= MAX_DISTINCT) seen.clear();
  const count = (seen.get(distinct) ?? 0) + 1;
  seen.set(distinct, count);
  if (Number.isInteger(Math.log10(count))) {
    const whose = origin.plugin === "unknown"
      ? "of unknown origin (a plugin's un-awaited call?)"
      : `in plugin "${origin.plugin}"`;
    opts.logger.error(`${what} ${whose}, kept running: ${text}`, {
      plugin: origin.plugin,
      ...(origin.at === null ? {} : { at: origin.at }),
      count,
    });
  }
  return true;
}

/** Installs the handlers on this thread (the main one: engine workers have their own, which crash). */
export function handleUnhandled(opts: UnhandledOptions): void {
  globalThis.addEventListener("unhandledrejection", (e) => {
    if (onUnhandled("rejection", e.reason, opts)) e.preventDefault();
  });
  globalThis.addEventListener("error", (e) => {
    if (onUnhandled("exception", e.error ?? e.message, opts)) e.preventDefault();
  });
}
