import type { BreakerOptions } from "./breaker.ts";
import type { NotifiersFile } from "./config.ts";
import type { Notifier } from "./plugin.ts";
import type { RetryPolicy } from "./policy.ts";

export interface NotifierInstance {
  name: string;
  plugin: string;
  notifier: Notifier;
}

/** What the notifier stage works from; swapped as a whole on a configuration reload. */
export interface NotifierSet {
  config: NotifiersFile;
  instances: ReadonlyMap<string, NotifierInstance>;
  policy: RetryPolicy;
  breaker: BreakerOptions;
  /** Notifications in flight per notifier instance. */
  maxInFlight: number;
  /**
   * Notifications a notifier instance may hold unfinished (queued, grouped or in flight) before the
   * stage pauses the input that feeds it.
   */
  maxQueued: number;
}
