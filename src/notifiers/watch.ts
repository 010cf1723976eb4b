/**
 * Watches one file (which may not exist yet) and calls `onChange` once per burst of changes: an
 * editor's write-rename-chmod is one reload. The rest of the code never touches `Deno.watchFs`.
 */
export function watchFile(path: string, onChange: () => void, debounceMs = 300): { close(): void } {
  const slash = path.lastIndexOf("/");
  const dir = slash < 0 ? "." : path.slice(0, slash) || "/";
  const base = path.slice(slash + 1);
  const watcher = Deno.watchFs(dir, { recursive: false });
  let timer: ReturnType<typeof setTimeout> | undefined;
  (async () => {
    for await (const event of watcher) {
      if (!event.paths.some((p) => p.endsWith(`/${base}`) || p === base)) continue;
      clearTimeout(timer);
      timer = setTimeout(onChange, debounceMs);
    }
  })().catch(() => {/* closed */});
  return {
    close() {
      clearTimeout(timer);
      try {
        watcher.close();
      } catch { /* already closed */ }
    },
  };
}
