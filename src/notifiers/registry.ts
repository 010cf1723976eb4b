import type { Logger } from "../log.ts";
import { durationMs } from "../rules/schema.ts";
import { DEFAULT_BREAKER } from "./breaker.ts";
import {
  NotifierConfigError,
  NotifiersFile,
  type ParsedNotifiersFile,
  parseNotifiersFile,
} from "./config.ts";
import type { NotifierInstance, NotifierSet } from "./set.ts";
import {
  createNotifier,
  discoverPlugins,
  isPluginPath,
  loadPluginModule,
  PLUGIN_TIMEOUT_MS,
} from "./load.ts";
import type { NotifierPlugin, PluginContext } from "./plugin.ts";
import { DEFAULT_RETRY_POLICY } from "./policy.ts";
import { watchFile } from "../watch.ts";
import { readRuleFileBytes } from "../rules/load.ts";

/**
 * Unfinished notifications per notifier before its input pauses: 10 s of a 1,000 alerts/s stream.
 * Riding out a whole outage without pausing takes `give_up_after` x the alert rate.
 */
export const DEFAULT_MAX_QUEUED = 10_000;

/**
 * notifiers.yaml larger than this is refused (the last good configuration stays): its YAML parse
 * cannot be split and holds up the event loop. Measured at load 1.8 on 2 cores: 20,000 one-line
 * routes (1.26 MB) parsed in 3.1 s; 256 KiB holds 4,160 of them, parsed in 287 ms. The same limit as
 * a rule file's.
 */
export const MAX_NOTIFIERS_FILE_BYTES = 256 * 1024;

export interface NotifierConfigStatus {
  file: string;
  /** False when the file on disk is invalid and the last good configuration is still in effect. */
  current: boolean;
  problems: string[];
  /** The problems located, as the rule files' are: file, line, column, message. */
  errors: { file: string; line: number; column: number; message: string }[];
  /** Loads that found the file invalid, since start. */
  reload_errors: number;
  loaded_at: string | null;
  notifiers: { name: string; plugin: string }[];
}

export interface NotifierRegistryOptions {
  /** The configuration file; a missing file means console only. */
  file: string;
  pluginsDir: string;
  logger: Logger;
  env?: (name: string) => string | undefined;
  /** The dead-letter queue, for plugins (`PluginContext.deadLetter`) and the built-in `dlq` notifier. */
  deadLetter?: PluginContext["deadLetter"];
  /** How long a plugin may take to load and to create a notifier (`PLUGIN_TIMEOUT_MS`). */
  pluginTimeoutMs?: number;
}

/**
 * Closes a notifier whatever its `close` does: a JS plugin's may return nothing or throw at once, and
 * neither may turn a reload that is already in effect into a failed one.
 */
async function closeQuietly(inst: NotifierInstance): Promise<void> {
  await Promise.resolve().then(() => inst.notifier.close?.()).catch(() => {});
}

/**
 * The notifier configuration as the service sees it: the instances of the last good file, swapped
 * as a whole on reload. An invalid file keeps the last good set and is reported with file:line:col.
 */
export class NotifierRegistry {
  readonly #opts: NotifierRegistryOptions;
  #set: NotifierSet | null = null;
  #keys = new Map<string, string>();
  #status: NotifierConfigStatus;
  #watcher: { close(): void } | null = null;
  #reloading: Promise<void> = Promise.resolve();

  constructor(opts: NotifierRegistryOptions) {
    this.#opts = opts;
    this.#status = {
      file: opts.file,
      current: false,
      problems: [],
      errors: [],
      reload_errors: 0,
      loaded_at: null,
      notifiers: [],
    };
  }

  /** The set in effect; `load` must have succeeded once. */
  get set(): NotifierSet {
    if (this.#set === null) throw new Error("Notifier configuration is not loaded");
    return this.#set;
  }

  status(): NotifierConfigStatus {
    return structuredClone(this.#status);
  }

  /** Loads the file; throws (the first problem) when it is invalid, keeping the set in effect. */
  async load(): Promise<NotifierSet> {
    let parsed: ParsedNotifiersFile;
    try {
      let text: string | null = null;
      // Bounded and regular files only, as rule files: a FIFO or /dev/zero in its place would never
      // finish the read, and every later reload would wait behind it.
      const read = await readRuleFileBytes(this.#opts.file, this.#opts.file, {
        bytes: MAX_NOTIFIERS_FILE_BYTES,
        what: "the notifier configuration",
        advice: "fewer routes (match several sensor types or rules in one route)",
      });
      if (read.bytes !== null) text = new TextDecoder().decode(read.bytes);
      else if (!read.missing) throw new NotifierConfigError(this.#opts.file, 1, 1, read.problem.message);
      parsed = text === null
        ? { config: NotifiersFile.parse({}), locate: () => ({ line: 1, column: 1 }) }
        : parseNotifiersFile(this.#opts.file, text, this.#opts.env);
      const set = await this.#build(parsed);
      const old = this.#set;
      this.#set = set;
      this.#status = {
        file: this.#opts.file,
        current: true,
        problems: [],
        errors: [],
        reload_errors: this.#status.reload_errors,
        loaded_at: new Date().toISOString(),
        notifiers: [...set.instances.values()].map((i) => ({ name: i.name, plugin: i.plugin })),
      };
      // Instances the new set did not take over are closed; in-flight tries keep their reference.
      const kept = new Set(set.instances.values());
      for (const inst of old?.instances.values() ?? []) {
        if (!kept.has(inst)) await closeQuietly(inst);
      }
      return set;
    } catch (err) {
      const located = err instanceof NotifierConfigError
        ? err.problems
        : [{ file: this.#opts.file, line: 1, column: 1, message: (err as Error).message }];
      this.#status = {
        ...this.#status,
        current: false,
        problems: [(err as Error).message],
        errors: located,
        reload_errors: this.#status.reload_errors + 1,
      };
      throw err;
    }
  }

  /** Reloads on every change of the file until `close`; problems are logged, never thrown. */
  watch(): void {
    this.#watcher ??= watchFile(this.#opts.file, () => {
      this.#reloading = this.#reloading.then(async () => {
        try {
          const set = await this.load();
          this.#opts.logger.info("Notifier configuration reloaded", {
            file: this.#opts.file,
            notifiers: [...set.instances.keys()].join(","),
            routes: set.config.routes.length,
          });
        } catch (err) {
          this.#opts.logger.error(
            `Notifier configuration problem, keeping the last good one: ${(err as Error).message}`,
            {
              file: this.#opts.file,
            },
          );
        }
      });
    });
  }

  async close(): Promise<void> {
    this.#watcher?.close();
    await this.#reloading;
    for (const inst of this.#set?.instances.values() ?? []) await closeQuietly(inst);
  }

  async #build({ config, locate }: ParsedNotifiersFile): Promise<NotifierSet> {
    const fail = (path: (string | number)[], message: string, cause?: unknown): never => {
      const p = locate(path);
      throw new NotifierConfigError(
        this.#opts.file,
        p.line,
        p.column,
        message,
        cause === undefined ? {} : { cause },
      );
    };
    const timeoutMs = this.#opts.pluginTimeoutMs ?? PLUGIN_TIMEOUT_MS;
    const { plugins, problems } = await discoverPlugins(
      this.#opts.pluginsDir,
      config.plugin_paths,
      timeoutMs,
    );
    for (const p of problems) this.#opts.logger.warn(`Plugin problem: ${p}`);
    // The default receiver and the dead-letter notifier always exist, unless configured by name.
    const entries = [...config.notifiers];
    for (const builtIn of ["console", "dlq"]) {
      if (!entries.some((n) => n.name === builtIn)) {
        entries.push({ name: builtIn, plugin: builtIn, options: {} });
      }
    }
    const instances = new Map<string, NotifierInstance>();
    const keys = new Map<string, string>();
    for (const [i, entry] of entries.entries()) {
      let plugin: NotifierPlugin | undefined;
      if (isPluginPath(entry.plugin)) {
        try {
          plugin = await loadPluginModule(entry.plugin, timeoutMs);
        } catch (err) {
          fail([i, "plugin"], (err as Error).message, err);
        }
      } else {
        plugin = plugins.get(entry.plugin)?.plugin;
        if (plugin === undefined) {
          fail(
            [i, "plugin"],
            `Notifier "${entry.name}": unknown plugin "${entry.plugin}" (known: ${
              [...plugins.keys()].join(", ")
            })`,
          );
        }
      }
      const key = JSON.stringify([entry.plugin, entry.options]);
      const previous = this.#set?.instances.get(entry.name);
      if (previous !== undefined && this.#keys.get(entry.name) === key) {
        instances.set(entry.name, previous);
      } else {
        try {
          const notifier = await createNotifier(
            plugin!,
            entry.name,
            entry.options,
            this.#opts.logger,
            timeoutMs,
            this.#opts.deadLetter,
          );
          instances.set(entry.name, { name: entry.name, plugin: plugin!.name, notifier });
        } catch (err) {
          const field = /option "([^"]+)"/.exec((err as Error).message)?.[1];
          fail([i, "options", ...(field?.split(".") ?? [])], (err as Error).message, err);
        }
      }
      keys.set(entry.name, key);
    }
    this.#keys = keys;
    const d = config.delivery;
    const ms = (v: Parameters<typeof durationMs>[0] | undefined, fallback: number) =>
      v === undefined ? fallback : durationMs(v);
    return {
      config,
      instances,
      policy: {
        maxAttempts: d.max_attempts ?? DEFAULT_RETRY_POLICY.maxAttempts,
        baseDelayMs: ms(d.backoff_base, DEFAULT_RETRY_POLICY.baseDelayMs),
        maxDelayMs: ms(d.backoff_max, DEFAULT_RETRY_POLICY.maxDelayMs),
        giveUpAfterMs: ms(d.give_up_after, DEFAULT_RETRY_POLICY.giveUpAfterMs),
        timeoutMs: ms(d.timeout, DEFAULT_RETRY_POLICY.timeoutMs),
      },
      breaker: {
        failureThreshold: d.breaker_failures ?? DEFAULT_BREAKER.failureThreshold,
        cooldownMs: ms(d.breaker_cooldown, DEFAULT_BREAKER.cooldownMs),
      },
      maxInFlight: d.max_in_flight ?? 16,
      maxQueued: d.max_queued ?? DEFAULT_MAX_QUEUED,
      onFull: d.on_full ?? "dead_letter",
    };
  }
}
