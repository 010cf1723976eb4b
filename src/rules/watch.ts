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
