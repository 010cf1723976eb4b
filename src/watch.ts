/**
 * The one file-system watcher of the service (rules and notifier configuration hot reload): a small
 * debounced wrapper around `Deno.watchFs` that emits typed events; nothing else touches the watcher.
 *
 * @module
 */

/** A change under the watched directory, after debouncing: the set of paths touched. */
export interface RulesChanged {
  type: "changed";
  paths: Set<string>;
}

export interface Watcher {
  close(): void;
}

/**
 * Watches a directory and reports changed YAML files, debounced: an editor's save (write, rename,
 * chmod) becomes one event. The rest of the code never touches the file system watcher.
 */
export function watchDirectory(
  dir: string,
  onChange: (e: RulesChanged) => void,
  options: { debounceMs?: number; filter?: (path: string) => boolean } = {},
): Watcher {
  const debounceMs = options.debounceMs ?? 100;
  const filter = options.filter ?? ((p: string) => /\.ya?ml$/.test(p));
  const fsWatcher = Deno.watchFs(dir, { recursive: false });
  let pending = new Set<string>();
  let timer: ReturnType<typeof setTimeout> | undefined;
  (async () => {
    try {
      for await (const event of fsWatcher) {
        const paths = event.paths.filter(filter);
        if (paths.length === 0) continue;
        for (const p of paths) pending.add(p);
        clearTimeout(timer);
        timer = setTimeout(() => {
          const paths = pending;
          pending = new Set();
          onChange({ type: "changed", paths });
        }, debounceMs);
      }
    } catch (err) {
      if (!(err instanceof Deno.errors.BadResource)) throw err;
    }
  })();
  return {
    close() {
      clearTimeout(timer);
      try {
        fsWatcher.close();
      } catch { /* already closed */ }
    },
  };
}

/** Watches one file (which may not exist yet): one call per burst of changes. */
export function watchFile(path: string, onChange: () => void, debounceMs = 300): Watcher {
  const slash = path.lastIndexOf("/");
  const dir = slash < 0 ? "." : path.slice(0, slash) || "/";
  const base = path.slice(slash + 1);
  return watchDirectory(dir, () => onChange(), {
    debounceMs,
    filter: (p) => p === base || p.endsWith(`/${base}`),
  });
}
