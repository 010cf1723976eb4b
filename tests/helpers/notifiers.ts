/** Building blocks for notifier tests: alerts, a NotifierSet, a Dispatcher, a logger whose lines are kept. */
import type { SensorAlert } from "../../src/contract/schemas.ts";
import { createLogger, type Logger, registerSecret } from "../../src/log.ts";
import { NotifiersFile } from "../../src/notifiers/config.ts";
import {
  Dispatcher,
  type DispatcherOptions,
  type NotifierInstance,
  type NotifierSet,
} from "../../src/notifiers/dispatcher.ts";
import type { Notification, Notifier, NotifierPlugin, PluginContext } from "../../src/notifiers/plugin.ts";
import { DEFAULT_RETRY_POLICY, type RetryPolicy } from "../../src/notifiers/policy.ts";

let seq = 0;

export function alert(over: Partial<SensorAlert> = {}): SensorAlert {
  seq++;
  return {
    alert_id: `alert-${seq}`,
    sensor_id: "co2-001",
    sensor_type: "co2",
    priority: "critical",
    message: "CO2 at co2-001: value 1201 ppm exceeds the maximum threshold 1000",
    value: 1201,
    threshold: 1000,
    timestamp: "2026-11-25T21:00:00.000Z",
    acknowledged: false,
    rule_id: "co2-critical",
    state: "firing",
    location: "Building A, Floor 1",
    unit: "ppm",
    labels: { team: "safety" },
    description: "CO2 concentration above 1000 ppm",
    event: { event_id: `ev-${seq}`, sensor_id: "co2-001", sensor_type: "co2", value: 1201, unit: "ppm" },
    ...over,
  } as SensorAlert;
}

/**
 * Alert `i` of `prefix` (its id `<prefix>-<i>`, its sensor's own), as the engine writes it to the
 * alerts topic: the record's key and JSON value.
 */
export function alertRecord(prefix: string, i: number, over: Record<string, unknown> = {}) {
  const a = {
    alert_id: `${prefix}-${i}`,
    sensor_id: `${prefix}-temp-${i}`,
    sensor_type: "temperature",
    priority: "critical",
    message: `Temperature at ${prefix}-temp-${i}: value 50 °C exceeds the maximum threshold 35`,
    value: 50,
    threshold: 35,
    timestamp: new Date(Date.UTC(2026, 10, 25, 21, 0, 0) + i * 1000).toISOString(),
    acknowledged: false,
    rule_id: "temperature-out-of-range",
    state: "firing",
    location: "Building B",
    unit: "°C",
    labels: {},
    ...over,
  };
  return { key: `temperature:${a.sensor_id}`, value: JSON.stringify(a) };
}

export function captureLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  return {
    logger: createLogger({ level: "debug", sink: { write: (l) => lines.push(l), pretty: false } }),
    lines,
  };
}

export function pluginContext(
  logger: Logger,
  name = "test",
  deadLettered: Notification[] = [],
): PluginContext {
  return {
    name,
    logger,
    registerSecret,
    deadLetter: (batch) => Promise.resolve(void deadLettered.push(...batch)),
  };
}

export async function instance(
  plugin: NotifierPlugin,
  name: string,
  options: unknown,
  logger: Logger,
): Promise<NotifierInstance> {
  const notifier: Notifier = await plugin.create(plugin.options.parse(options), pluginContext(logger, name));
  return { name, plugin: plugin.name, notifier };
}

/** A set where `instances` get every alert (unless `file` routes otherwise), with fast retries. */
export function notifierSet(
  instances: NotifierInstance[],
  over: {
    policy?: Partial<RetryPolicy>;
    file?: unknown;
    breaker?: NotifierSet["breaker"];
    maxInFlight?: number;
    maxQueued?: number;
    onFull?: NotifierSet["onFull"];
  } = {},
): NotifierSet {
  return {
    config: NotifiersFile.parse(
      over.file ?? {
        routes: [{ receivers: instances.map((i) => i.name) }],
        notifiers: instances.map((i) => ({ name: i.name, plugin: i.plugin })),
      },
    ),
    instances: new Map(instances.map((i) => [i.name, i])),
    policy: { ...DEFAULT_RETRY_POLICY, baseDelayMs: 20, maxDelayMs: 200, timeoutMs: 2000, ...over.policy },
    breaker: over.breaker ?? { failureThreshold: 100, cooldownMs: 1000 },
    maxInFlight: over.maxInFlight ?? 16,
    maxQueued: over.maxQueued ?? 10_000,
    onFull: over.onFull ?? "dead_letter",
  };
}

/** An instance whose notifier keeps every notification it is sent, in `sent`, and succeeds. */
export function capturing(name: string, plugin: string): { inst: NotifierInstance; sent: Notification[] } {
  const sent: Notification[] = [];
  const inst: NotifierInstance = {
    name,
    plugin,
    notifier: { notify: (batch: Notification[]) => Promise.resolve(void sent.push(...batch)) },
  };
  return { inst, sent };
}

/**
 * A Dispatcher over `instances` (a fresh `notifierSet` each time it asks) whose dead letters go nowhere;
 * `over` brings what the test is about: silences, inhibit rules, a clock, a storm guard.
 */
export function dispatcher(
  instances: NotifierInstance[],
  over: Partial<Omit<DispatcherOptions, "notifiers">> = {},
  set: Parameters<typeof notifierSet>[1] = {},
): Dispatcher {
  return new Dispatcher({
    notifiers: () => notifierSet(instances, set),
    logger: over.logger ?? captureLogger().logger,
    deadLetter: () => Promise.resolve(),
    dlqTopic: "dlq",
    alertsTopic: "alerts",
    ...over,
  });
}

/** Hands `batch` to `inst` as a first try of delivery `id` (the first notification's by default), never aborted. */
export function notifyOnce(inst: NotifierInstance, batch: Notification[], id = batch[0]!.id): Promise<void> {
  return inst.notifier.notify(batch, { id, signal: new AbortController().signal, attempt: 1 });
}

/** What `run` rejects with, or null once it resolves. */
export function failureOf(run: Promise<unknown>): Promise<unknown> {
  return run.then(() => null, (e) => e);
}
