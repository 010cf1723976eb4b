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
   * Notifications a notifier instance may hold unfinished (queued, grouped or in flight); what happens
   * beyond it is `onFull`.
   */
  maxQueued: number;
  /**
   * `dead_letter` (default): a notification for a notifier that holds `maxQueued` goes to the DLQ at
   * once, so a dead receiver costs only its own notifications; `pause`: the stage pauses the input
   * partitions that feed it, which holds up every other receiver fed by them too.
   */
  onFull: "dead_letter" | "pause";
}
