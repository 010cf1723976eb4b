/**
 * The one file-system watcher of the service (rules and notifier configuration hot reload): a small
 * debounced wrapper around `Deno.watchFs` that emits typed events; nothing else touches the watcher.
 *
 * @module
 */

/** A change under the watched directory, after debouncing: the set of paths touched. */
export interface RulesChanged {
  type: "changed";
  /** Paths in the watched directory (a change to a symlink's target is reported as the symlink). */
  paths: Set<string>;
  /** The directory was replaced (or came back after being removed) and the new one is watched now. */
  rewatched: boolean;
}

export interface Watcher {
  close(): void;
}

export interface WatchOptions {
  /** Quiet time that ends a burst of changes (an editor's save is a write, a rename and a chmod). */
  debounceMs?: number;
  /** Which paths are reported; a replaced directory is reported whatever the filter says. */
  filter?: (path: string) => boolean;
  /** How often the directory is compared with what was last seen (see `watchDirectory`). */
  resyncMs?: number;
}

/** What the directory looked like at the last check. */
interface Snapshot {
  /** `dev:ino` of the directory (following a symlink to it). */
  dir: string;
  /** Each symlink in the directory and the real path it leads to ("" when dangling or not readable). */
  links: Map<string, string>;
  /** Each reported file and what tells its versions apart (real path, mtime, size, inode). */
  files: Map<string, string>;
}

/**
 * Watches a directory and reports changed files, debounced. Symlinked files are followed: their
 * targets' directories are watched too and re-resolved after every change, so a Kubernetes ConfigMap
 * update (its `..data` symlink swapped to a new directory) is a change of the files it holds.
 *
 * inotify watches an inode, not a name: after `mv rules rules.old && cp -r new rules` a watch would
 * keep reporting the old directory, and Deno shares one watch per path in a process, so watching the
 * same path again while another watcher (the notifier configuration's, in the same directory) holds
 * it stays on the old inode and reports nothing (seen with Deno 2.9). So every `resyncMs` the directory
 * is compared with the last snapshot (one stat per reported file): a replaced directory is reported
 * and watched again, and a change the watch missed is reported at most `resyncMs` late. The rest of the
 * code never touches the file system watcher.
 */
export function watchDirectory(
  dir: string,
  onChange: (e: RulesChanged) => void,
  options: WatchOptions = {},
): Watcher {
  const debounceMs = options.debounceMs ?? 100;
  const resyncMs = options.resyncMs ?? 1000;
  const filter = options.filter ?? ((p: string) => /\.ya?ml$/.test(p));
  const base = dir.replace(/\/+$/, "") || "/";
  let closed = false;
  let fsWatcher: Deno.FsWatcher | null = null;
  let watching = new Set<string>();
  let known: Snapshot | null = null;
  /** The first check takes the baseline; `gone` is the directory missing at the last check. */
  let first = true;
  let gone = false;
  /** Real path of a symlink's target → the symlinks in the directory that lead to it. */
  let linkOf = new Map<string, string[]>();
  let pending = new Set<string>();
  let pendingRewatch = false;
  let debounce: ReturnType<typeof setTimeout> | undefined;
  let resync: ReturnType<typeof setTimeout> | undefined;
  let checking: Promise<void> = Promise.resolve();

  const watch = async (paths: Set<string>) => {
    if (fsWatcher !== null) {
      try {
        fsWatcher.close();
      } catch { /* already closed */ }
      fsWatcher = null;
      // The path is released after the close: watching it again in the same turn keeps the old inode.
      await new Promise((resolve) => setTimeout(resolve, 0));
      if (closed) return;
    }
    // A target directory this process may not read must not cost the directory itself its watch.
    for (const attempt of [paths, new Set([base])]) {
      try {
        const w = fsWatcher = Deno.watchFs([...attempt], { recursive: false });
        watching = paths;
        pump(w);
        return;
      } catch { /* next attempt */ }
    }
    // The directory is missing (mid-swap): the next check watches it again.
    watching = new Set();
  };

  const pump = async (w: Deno.FsWatcher) => {
    try {
      for await (const event of w) {
        for (const p of event.paths) {
          for (const path of linkOf.get(p) ?? [p]) if (filter(path)) pending.add(path);
        }
        // Any event, even one the filter drops (`..data` renamed), may have moved a symlink.
        schedule();
      }
    } catch {
      // BadResource after close; any other failure: the next check watches again.
    }
    if (w === fsWatcher) fsWatcher = null;
  };

  const emit = () => {
    if (closed || (pending.size === 0 && !pendingRewatch)) return;
    const e: RulesChanged = { type: "changed", paths: pending, rewatched: pendingRewatch };
    pending = new Set();
    pendingRewatch = false;
    // Outside the chain of checks: a callback that throws must not stop the watcher.
    queueMicrotask(() => onChange(e));
  };

  const schedule = () => {
    clearTimeout(debounce);
    debounce = setTimeout(() => {
      checking = checking.then(check).then(emit);
    }, debounceMs);
  };

  /** Compares the directory with the last snapshot, and watches again what moved. */
  const check = async () => {
    if (closed) return;
    const now = await snapshot(base, filter);
    if (now === null) {
      gone = true;
      first = false;
      return;
    }
    const replaced = !first && (gone || known?.dir !== now.dir);
    const before = first ? null : known;
    known = now;
    gone = false;
    linkOf = new Map();
    for (const [link, real] of now.links) {
      if (real !== "") linkOf.set(real, [...linkOf.get(real) ?? [], link]);
    }
    if (before !== null) {
      for (const [file, version] of now.files) if (before.files.get(file) !== version) pending.add(file);
      for (const file of before.files.keys()) if (!now.files.has(file)) pending.add(file);
    } else if (first) {
      // A symlink's target may have changed before its directory was watched: one reload to be sure.
      for (const link of now.links.keys()) if (filter(link)) pending.add(link);
    }
    first = false;
    const wanted = new Set([base, ...[...linkOf.keys()].map(parentOf)]);
    if (replaced || fsWatcher === null || !sameSet(wanted, watching)) await watch(wanted);
    if (replaced) pendingRewatch = true;
  };

  const poll = () => {
    resync = setTimeout(() => {
      checking = checking.then(check).then(emit).finally(() => {
        if (!closed) poll();
      });
    }, resyncMs);
  };

  fsWatcher = (() => {
    try {
      return Deno.watchFs(base, { recursive: false });
    } catch {
      return null;
    }
  })();
  if (fsWatcher !== null) {
    watching = new Set([base]);
    pump(fsWatcher);
  }
  checking = checking.then(check).then(emit);
  poll();
  return {
    close() {
      closed = true;
      clearTimeout(debounce);
      clearTimeout(resync);
      try {
        fsWatcher?.close();
      } catch { /* already closed */ }
    },
  };
}

async function snapshot(dir: string, filter: (path: string) => boolean): Promise<Snapshot | null> {
  let info: Deno.FileInfo;
  const links = new Map<string, string>();
  const files = new Map<string, string>();
  try {
    info = await Deno.stat(dir);
    for await (const entry of Deno.readDir(dir)) {
      const path = `${dir === "/" ? "" : dir}/${entry.name}`;
      const real = entry.isSymlink ? await Deno.realPath(path).catch(() => "") : path;
      if (entry.isSymlink) links.set(path, real);
      if (!filter(path) || entry.isDirectory) continue;
      const file = await Deno.stat(path).catch(() => null);
      files.set(
        path,
        file === null ? "missing" : `${real}:${file.mtime?.getTime()}:${file.size}:${file.ino}`,
      );
    }
  } catch {
    return null;
  }
  return { dir: `${info.dev}:${info.ino}`, links, files };
}

function parentOf(path: string): string {
  const slash = path.lastIndexOf("/");
  return slash <= 0 ? "/" : path.slice(0, slash);
}

function sameSet(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  return a.size === b.size && [...a].every((x) => b.has(x));
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
