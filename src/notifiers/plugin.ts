/**
 * The public notifier plugin API (version 1). Built-in notifiers in `plugins/` are written against
 * exactly these types; a user's plugin imports them the same way.
 *
 * ```ts
 * import { z } from "zod";
 * import { defineNotifier } from "../src/notifiers/plugin.ts";
 *
 * export default defineNotifier({
 *   apiVersion: 1,
 *   name: "stdout-count",
 *   options: z.object({ prefix: z.string().default("alerts") }),
 *   create(options) {
 *     return { notify: (batch) => { console.log(options.prefix, batch.length); return Promise.resolve(); } };
 *   },
 * });
 * ```
 *
 * @module
 */
import type { z } from "zod";
import type { SensorAlert } from "../contract/schemas.ts";
import type { Logger } from "../log.ts";

export type { SensorAlert } from "../contract/schemas.ts";
export type { Logger } from "../log.ts";

export const PLUGIN_API_VERSION = 1;

/** One alert to deliver. `id` is stable across retries of the same notification: use it to de-duplicate. */
export interface Notification {
  id: string;
  alert: SensorAlert;
}

export interface NotifyContext {
  /** Aborted when the delivery times out or the service stops. */
  signal: AbortSignal;
  /** 1 for the first try, 2 for the first retry, … */
  attempt: number;
}

export interface Notifier {
  /** Delivers a batch (one alert, or a group of one route). Throw to fail; see `DeliveryError`. */
  notify(batch: Notification[], ctx: NotifyContext): Promise<void>;
  close?(): Promise<void>;
}

export interface PluginContext {
  /** The instance name from the configuration. */
  name: string;
  logger: Logger;
}

export interface NotifierPlugin<S extends z.ZodType = z.ZodType> {
  apiVersion: typeof PLUGIN_API_VERSION;
  name: string;
  /** Validates the instance's `options` from YAML before `create` is called. */
  options: S;
  create(options: z.output<S>, ctx: PluginContext): Notifier | Promise<Notifier>;
}

/** Identity helper that gives a plugin definition its types. */
export function defineNotifier<S extends z.ZodType>(plugin: NotifierPlugin<S>): NotifierPlugin<S> {
  return plugin;
}

export type FailureReason = "client" | "server" | "rate-limited" | "timeout" | "network" | "plugin";

/** A failed delivery, with whether trying again can help. */
export class DeliveryError extends Error {
  readonly reason: FailureReason;
  readonly retryable: boolean;
  readonly status: number | undefined;
  readonly retryAfterMs: number | undefined;
  constructor(
    message: string,
    init: { reason: FailureReason; retryable: boolean; status?: number; retryAfterMs?: number },
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "DeliveryError";
    this.reason = init.reason;
    this.retryable = init.retryable;
    this.status = init.status;
    this.retryAfterMs = init.retryAfterMs;
  }
}
