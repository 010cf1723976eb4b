/**
 * The public notifier plugin API (version 1). Built-in notifiers in `plugins/` are written against
 * exactly these types; a user's plugin imports them the same way.
 *
 * ```ts
 * import { z } from "zod";
 * import { defineNotifier } from "@sensor-rules/engine/plugin";
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
import type { FailureReason } from "./errors.ts";

export type {
  AlertContract,
  Priority,
  RaisedAlertFields,
  SensorAlert,
  SensorEvent,
  SensorEventInput,
  SensorType,
} from "../contract/schemas.ts";
export { PRIORITIES, SENSOR_TYPES } from "../contract/schemas.ts";
export type { AlertAnomaly, AlertLimits, RuleKind } from "../contract/records.ts";
export type { Fields, Level, Logger } from "../log.ts";

/** The plugin API version this service speaks: a plugin declares it as its `apiVersion`. */
export const PLUGIN_API_VERSION = 1 as const;

/** One alert to deliver. `id` is stable across retries of the same notification: use it to de-duplicate. */
export interface Notification {
  /** The same on every retry and redelivery of this notification: the key to drop duplicates by. */
  id: string;
  /** The alert, as the engine wrote it to the alerts topic. */
  alert: SensorAlert;
  /** Set when the notification failed for good and is handed to a dead-letter notifier. */
  failure?: DeliveryFailure;
}

/** One try of a notification, as kept in its DLQ record. */
export interface AttemptRecord {
  /** 1 for the first try. */
  attempt: number;
  /** When the try failed, ISO 8601. */
  at: string;
  /** The class of the failure. */
  reason: FailureReason;
  /** The receiver's HTTP status, when it answered. */
  status?: number;
  /** The error's message, with secrets replaced by `[REDACTED]`. */
  error: string;
}

/** Why a notification failed for good: which notifier, every attempt, the last error (redacted). */
export interface DeliveryFailure {
  /** The notifier instance's name from the configuration. */
  notifier: string;
  /** The plugin the instance runs (its `name`). */
  plugin: string;
  /** The delivery id of the batch that failed (`NotifyContext.id`). */
  delivery_id: string;
  /** Every try, oldest first. */
  attempts: AttemptRecord[];
  /** The last error's message, with secrets replaced by `[REDACTED]`. */
  error: string;
}

/** What a notifier is told about the try it is asked to make. */
export interface NotifyContext {
  /**
   * The delivery id: the same on every retry of this batch and on a redelivery after a restart, so
   * receivers can drop duplicates (a batch of one: the notification's id).
   */
  id: string;
  /** Aborted when the try times out or the service stops: pass it to `fetch`. */
  signal: AbortSignal;
  /** 1 for the first try, 2 for the first retry, … */
  attempt: number;
}

/** A running notifier instance, made by its plugin's `create`. */
export interface Notifier {
  /** Delivers a batch (one alert, or a group of one route). Throw to fail; see `DeliveryError`. */
  notify(batch: Notification[], ctx: NotifyContext): Promise<void>;
  /** Releases what the instance holds (connections, timers) when it is replaced or the service stops. */
  close?(): Promise<void>;
}

/** What the service gives a plugin's `create`. */
export interface PluginContext {
  /** The instance name from the configuration. */
  name: string;
  /** The service's logger, with the instance's name in its fields. */
  logger: Logger;
  /**
   * Marks a value (a token, a URL with a token in it) as secret: it is replaced by `[REDACTED]` in
   * every log line, error and DLQ record. Values from `${ENV_VAR}` in the YAML are secret already.
   */
  registerSecret(value: string): void;
  /**
   * Records notifications in the dead-letter queue (the DLQ topic with Kafka, the local DLQ file
   * otherwise) as `stage: notify` records, with their `failure` when set; resolves once durable.
   * What the built-in `dlq` notifier does, available to any plugin.
   */
  deadLetter(batch: Notification[]): Promise<void>;
}

/** A notifier plugin: the default export of a module in `plugins/` (or `PLUGINS_DIR`). */
export interface NotifierPlugin<S extends z.ZodType = z.ZodType> {
  /** The plugin API version the plugin is written against: `PLUGIN_API_VERSION`. */
  apiVersion: typeof PLUGIN_API_VERSION;
  /** The name `plugin:` refers to in `notifiers.yaml`. */
  name: string;
  /** Validates the instance's `options` from YAML before `create` is called. */
  options: S;
  /** Makes an instance from its validated options; called again for each change of `notifiers.yaml`. */
  create(options: z.output<S>, ctx: PluginContext): Notifier | Promise<Notifier>;
}

/** Identity helper that gives a plugin definition its types. */
export function defineNotifier<S extends z.ZodType>(plugin: NotifierPlugin<S>): NotifierPlugin<S> {
  return plugin;
}

export { DeliveryError, type FailureReason } from "./errors.ts";
export { terminalSafeJson, visible } from "../terminal.ts";
export { classifyResponse, postJson, type PostOptions } from "./policy.ts";
export {
  type AddressClass,
  classifyAddress,
  type GuardedTarget,
  type GuardOptions,
  guardTarget,
  pinnedClient,
  resolveHost,
  targetOptions,
  type TargetPolicy,
} from "./target_guard.ts";
