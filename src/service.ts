/**
 * The composition root: builds each mode's output first (Kafka, or the in-process queue and local
 * files), then the stages that write to it: the notifiers, the engine stage under its guarantee, the
 * notifier stage. The three modes are Kafka, NDJSON replay and the embedded simulator (see `runMode`).
 *
 * @module
 */
import type { Kafka } from "kafkajs";
import { type Config, runMode } from "./config.ts";
import type { SensorAlert } from "./contract/schemas.ts";
import { buildDlqRecord, shrinkForDlq } from "./dlq/record.ts";
import { localEngineStage, replaySource } from "./engine/local.ts";
import { acknowledgeAlert } from "./engine/acknowledge.ts";
import { kafkaEngineStage } from "./engine/stage.ts";
import type { EngineView, EngineWorkers, RefreshWant, RunningEngine, SourceView } from "./engine/types.ts";
import { logSummary } from "./engine/summary.ts";
import type { Logger } from "./log.ts";
import { Dispatcher } from "./notifiers/dispatcher.ts";
import type { NotifierRegistry } from "./notifiers/registry.ts";
import { createNotifiers } from "./notifiers/setup.ts";
import { kafkaNotifierStage, localNotifierStage } from "./notifiers/stage.ts";
import type { SilenceGate } from "./notifiers/silences/gate.ts";
import {
  fileSilenceGate,
  fileSilences,
  kafkaSilenceGate,
  kafkaSilences,
} from "./notifiers/silences/setup.ts";
import type { Silences } from "./notifiers/silences/store.ts";
import { FiringView } from "./notifiers/firing_view.ts";
import type { Pipeline, PipelineObserver, PipelineOptions } from "./pipeline.ts";
import { formatProblem } from "./rules/load.ts";
import { RuleRegistry } from "./rules/registry.ts";
import { topicIds } from "./transport/topic_id.ts";
import { LimitsTopicFollower, LimitsTopicWatch } from "./source/limits_topic.ts";
import { simulatorSource } from "./simulator/stream.ts";
import type { OffsetGap } from "./source/kafka.ts";
import {
  createKafka,
  KafkaOutput,
  kafkaSettingsFromEnv,
  untilKafka,
  type UntilKafkaOptions,
} from "./transport/kafka.ts";
import { LocalOutput } from "./transport/local.ts";
import type { Output, OutRecord } from "./transport/output.ts";
import { AsyncQueue } from "./transport/queue.ts";
import { prepareTopics } from "./transport/topics.ts";
import { watchDirectory } from "./watch.ts";
import { leftGroup } from "./transport/transactional.ts";

export interface Service {
  /** The engine's state as the operator sees it (of every engine worker); null without an engine. */
  pipeline: EngineView | null;
  dispatcher: Dispatcher | null;
  /** The notifier configuration in effect and its reload status. */
  notifiers: NotifierRegistry;
  registry: RuleRegistry;
  /** Resolves when the service has stopped by itself (end of replay input) or after `stop`. */
  done: Promise<void>;
  stop(): Promise<void>;
  /** The local DLQ file in embedded and replay modes; null with Kafka (the DLQ topic). */
  dlqFile: string | null;
  /** True once rules are loaded and, with Kafka, every consumer has joined its group. */
  ready(): boolean;
  /** Publishes the engine's clock-driven output (exactly-once: with the state it changed). */
  flush: () => Promise<void>;
  /** Where the engine writes (in this thread; with engine workers, the process's own output). */
  output: Output;
  /** Acknowledges an open alert where its episode lives and publishes it; null when none is open. */
  acknowledge(alertId: string, by: string): Promise<SensorAlert | null>;
  /** Brings `pipeline` up to date when it is a copy (engine workers); the API awaits it before reading. */
  refresh?: (want?: RefreshWant) => Promise<void>;
  /** The Kafka client and this process's consumers (lag, readiness); null without a broker. */
  kafka: { client: Kafka; sources: readonly SourceView[] } | null;
  /** The silences every instance shares (the API writes them, the notifier stage obeys them). */
  silences: Silences;
  /** Why the source stopped before its end (replay, simulator), in one line; null when it did not. */
  sourceFailure?: () => string | null;
}

export interface ServiceOptions {
  config: Config;
  logger: Logger;
  observer?: PipelineObserver;
  /** What start-up waits for (the HTTP server's readiness reads it); aborting it gives up waiting. */
  startup?: Startup;
  /** Runs the engine in `config.workers` threads when there are more than one (Kafka mode). */
  workers?: EngineWorkers;
  /** Awaited before the engine joins its group (engine workers join together: one rebalance, not N). */
  beforeConsume?: () => Promise<void>;
  /** The engine handles no batch before this resolves (engine workers: until all are in the group). */
  processAfter?: Promise<void>;
  /**
   * Called with the service once it is built, before its consumers start (Kafka mode): readiness
   * says whether they joined, and what they count is read from the start.
   */
  attach?: (service: Service) => void;
}

/**
 * What an engine worker's thread runs (`startEngineService`): the engine stage with its rules, its
 * clock and the limits topic. The notifiers and the silences are the main thread's: the worker
 * evaluates rules and publishes alerts, and nothing it does reads a silence (the API adds
 * `silenced_by` in the main thread).
 */
export type EngineService = Omit<Service, "notifiers" | "silences">;

/** Start-up progress, reported by `/readyz` before the service is attached. */
export interface Startup {
  /** Why the service is not up yet, e.g. "waiting for Kafka at 127.0.0.1:9092: connection refused". */
  reason: string | null;
  /** A shutdown during start-up: waiting for the broker stops (startService throws). */
  signal?: AbortSignal;
}

export async function startService(opts: ServiceOptions): Promise<Service> {
  const { config, logger, observer, startup } = opts;
  const registry = await loadRules(config, logger);
  const service = runMode(config) === "kafka"
    ? await startKafka(config, logger, registry, observer, startup, opts, false)
    : await startLocal(config, logger, registry, observer);
  return withRuleClock(service, config, logger, observer);
}

/** An engine worker's service (see `EngineService`): Kafka mode, role `engine`. */
export async function startEngineService(opts: Omit<ServiceOptions, "workers">): Promise<EngineService> {
  const { config, logger, observer, startup } = opts;
  const registry = await loadRules(config, logger);
  const service = await startKafka(config, logger, registry, observer, startup, opts, true);
  return withRuleClock(service, config, logger, observer);
}

async function loadRules(config: Config, logger: Logger): Promise<RuleRegistry> {
  const registry = new RuleRegistry(config.rulesDir);
  const loaded = await registry.reload();
  // Later a missing directory keeps the rules in force; at start there are none to keep.
  if (registry.directoryProblem !== null) throw new Error(registry.directoryProblem.message);
  for (const p of loaded.problems) {
    logger.error(`Rule problem: ${formatProblem(p)}`, { rule: p.rule_id, file: p.file });
  }
  logger.info("Rules loaded", { rules: loaded.ruleSet.rules.length, dir: config.rulesDir });
  return registry;
}

/** What every mode's Pipeline shares. */
function pipelineSettings(
  config: Config,
  registry: RuleRegistry,
  logger: Logger,
  observer: PipelineObserver | undefined,
): Pick<PipelineOptions, "ruleSet" | "topics" | "logger" | "observer" | "maxSensors"> {
  return {
    ruleSet: () => registry.ruleSet,
    topics: config.topics,
    maxSensors: config.maxSensorsPerPartition,
    logger,
    ...(observer ? { observer } : {}),
  };
}

/** The notifier stage's Dispatcher; what it dead-letters goes to `output`. */
function dispatcherFor(
  config: Config,
  logger: Logger,
  notifiers: NotifierRegistry,
  output: Output,
  gate: SilenceGate,
  registry: RuleRegistry,
): Dispatcher {
  return new Dispatcher({
    silences: gate,
    inhibitions: () => registry.ruleSet.inhibitions,
    maxNotifications: (ruleId) => registry.ruleSet.byId.get(ruleId)?.maxNotifications ?? null,
    notifiesResolved: (ruleId) => registry.ruleSet.byId.get(ruleId)?.rule.notify_resolved ?? true,
    notifiers: () => notifiers.set,
    logger: logger.child({ stage: "notifier" }),
    deadLetter: (records) => output.send(records),
    dlqTopic: config.topics.dlq,
    alertsTopic: config.topics.alerts,
    stopGraceMs: deliveryGraceMs(config),
  });
}

/**
 * How long a notification in flight at a stop may still take: half of SHUTDOWN_TIMEOUT_MS, the rest
 * left to commit its offset and close.
 */
function deliveryGraceMs(config: Config): number {
  return config.shutdownTimeoutMs / 2;
}

/**
 * Hot reload and the engine clock, the same in every mode: rule files are re-read on change (the new
 * set is swapped in between two events), and a tick each second closes windows and notices silence.
 */
function withRuleClock<S extends EngineService>(
  service: S,
  config: Config,
  logger: Logger,
  observer?: PipelineObserver,
): S {
  const { registry, pipeline } = service;
  const watcher = watchDirectory(config.rulesDir, async ({ rewatched }) => {
    if (rewatched) logger.warn("Rules directory replaced, watching the new one", { dir: config.rulesDir });
    // Reading a file can fail in ways nobody planned for: the last good rules stay, the watcher goes on.
    const result = await registry.reload().catch((error) => {
      logger.error("Rules reload failed, keeping the rules in force", { dir: config.rulesDir, error });
      return null;
    });
    if (result === null) return;
    const { problems, ruleSet, changed, parsed, removed } = result;
    for (const p of problems) {
      logger.error(`Rule problem: ${formatProblem(p)}`, { rule: p.rule_id, file: p.file });
    }
    for (const file of removed) logger.warn("Rule file deleted, its rules are removed", { file });
    logger.info("Rules reloaded", {
      rules: ruleSet.rules.length,
      changed,
      problems: problems.length,
      parsed: parsed.length,
    });
    observer?.onReload?.({ rules: ruleSet.rules.length, changed, problems });
  });
  let ticking: Promise<void> = Promise.resolve();
  const timer = pipeline === null ? undefined : setInterval(() => {
    // One tick at a time: a slow publish must not pile ticks up.
    ticking = ticking.then(() =>
      service.flush().catch((error) =>
        // The transaction said it once already; the next tick after the rejoin publishes it.
        leftGroup(error)
          ? logger.debug("Clock flush skipped: the group rebalances", { error })
          : logger.error("Clock flush failed", { error })
      )
    );
  }, 1000);
  const stop = service.stop;
  let stopping: Promise<void> | null = null;
  const cleanup = () => {
    watcher.close();
    clearInterval(timer);
  };
  service.done.then(cleanup);
  return {
    ...service,
    stop: () =>
      stopping ??= (async () => {
        cleanup();
        await ticking;
        await stop();
      })(),
  };
}

/**
 * LIMITS_TOPIC: its bands, read to the topic's end before the engine judges an event, then followed.
 * `report`: whether what is wrong with the topic is said here (not in an engine worker: see
 * `watchLimitsTopic`).
 */
async function followLimitsTopic(
  config: Config,
  kafka: Kafka,
  registry: RuleRegistry,
  logger: Logger,
  report: boolean,
): Promise<LimitsTopicFollower | null> {
  const topic = config.limitsTopic;
  if (topic === null) return null;
  const skipped = (sensor_id: string, error: string) => {
    logger.error("Skipped a limits record", { topic, sensor_id, error });
  };
  // Before the first record: the rule set gets the (empty) topic now, not on a change of it.
  registry.applyTopicRecords(topic, [], skipped);
  const follower = new LimitsTopicFollower(
    kafka,
    topic,
    config.groups.engine,
    logger,
    (records) => registry.applyTopicRecords(topic, records, skipped),
    undefined,
    { report },
  );
  await follower.start().catch((err: Error) => {
    throw new Error(`Cannot follow the limits topic "${topic}": ${err.message}`, { cause: err });
  });
  return follower;
}

/**
 * LIMITS_TOPIC with engine workers: each worker follows it for its own rule set and says nothing of
 * it; what is wrong with it is said here, once for the process (see `LimitsTopicWatch`). Started
 * before the workers: a retention that deletes is refused before any of them starts.
 */
async function watchLimitsTopic(
  config: Config,
  kafka: Kafka,
  logger: Logger,
): Promise<LimitsTopicWatch | null> {
  const topic = config.limitsTopic;
  if (topic === null) return null;
  const watch = new LimitsTopicWatch(kafka, topic, logger);
  await watch.start().catch((err: Error) => {
    throw new Error(`Cannot follow the limits topic "${topic}": ${err.message}`, { cause: err });
  });
  return watch;
}

/** `worker`: an engine worker's thread, without notifiers and silences (see `EngineService`). */
function startKafka(
  config: Config,
  logger: Logger,
  registry: RuleRegistry,
  observer: PipelineObserver | undefined,
  startup: Startup | undefined,
  opts: Pick<ServiceOptions, "workers" | "beforeConsume" | "processAfter" | "attach">,
  worker: false,
): Promise<Service>;
function startKafka(
  config: Config,
  logger: Logger,
  registry: RuleRegistry,
  observer: PipelineObserver | undefined,
  startup: Startup | undefined,
  opts: Pick<ServiceOptions, "workers" | "beforeConsume" | "processAfter" | "attach">,
  worker: true,
): Promise<EngineService>;
async function startKafka(
  config: Config,
  logger: Logger,
  registry: RuleRegistry,
  observer: PipelineObserver | undefined,
  startup: Startup | undefined,
  { workers, beforeConsume, processAfter, attach }: Pick<
    ServiceOptions,
    "workers" | "beforeConsume" | "processAfter" | "attach"
  >,
  worker: boolean,
): Promise<Service | EngineService> {
  // kafkajs gives up after ~10 s; the service's own loops then wait with backoff and say so (the
  // consumers' restarts, the outputs' retries). With 10 retries (~34 s) a broker outage went
  // unnoticed by readiness for half a minute.
  const kafka: Kafka = createKafka(kafkaSettingsFromEnv(config.brokers), logger, { retries: 5 });
  // Built before anything writes to it, connected once the broker answers.
  // A record the broker refuses on its own for its size is not retried for ever (it held back every
  // later send): its failure goes to the DLQ instead, a DLQ record without its original value.
  const shrink = shrinkForDlq(config.topics.dlq);
  const output = new KafkaOutput(kafka, { retryUntilClosed: true, logger, shrink });
  const notifiers = worker ? null : await createNotifiers(config, logger, (records) => output.send(records));
  // The broker may not be there yet, or not ready (a fresh one answers UNKNOWN_TOPIC_OR_PARTITION
  // for a few seconds): wait for it, with `/readyz` saying why.
  const waitForKafka: UntilKafkaOptions = {
    brokers: config.brokers,
    logger,
    onWaiting: (reason) => {
      if (startup !== undefined) startup.reason = reason;
    },
    ...(startup?.signal !== undefined ? { signal: startup.signal } : {}),
  };
  // No retries of its own: untilKafka waits between attempts, with one log line each.
  const probe = createKafka(kafkaSettingsFromEnv(config.brokers), logger, { retries: 0 });
  const ids = topicIds(probe);
  // The input topic's partition count wins over SENSOR_PARTITIONS; the changelog mirrors it. A topic
  // the service cannot work with is refused (not retried) with the fix in the message.
  const eventPartitions = await untilKafka(async () => {
    const admin = probe.admin();
    try {
      await admin.connect();
      return await prepareTopics(admin, {
        ...config.topics,
        state: config.guarantee === "exactly_once" && config.role !== "notifier" ? config.topics.state : null,
        partitions: config.eventPartitions,
        engineGroup: config.groups.engine,
        silences: worker ? null : config.silences.topic,
        acceptEmptyState: config.acceptEmptyState,
        ...(ids === null ? {} : { readTopicId: (topic: string) => ids.read(topic) }),
      }, logger);
    } finally {
      await admin.disconnect().catch(() => {});
    }
  }, waitForKafka).finally(() => ids?.close().catch(() => {}));
  await untilKafka(() => output.connect(), waitForKafka);
  // Read whole before any alert is notified: a restart must not notify what a silence holds.
  const silences = worker ? null : kafkaSilences(kafka, output, config, logger);
  if (silences !== null) await untilKafka(() => silences.start(), waitForKafka);

  const onGap = (gap: OffsetGap) => output.send([deletedRecords(gap, config.topics.dlq)]);
  const consumer = {
    sessionTimeoutMs: config.sessionTimeoutMs,
    maxBytesPerPartition: config.maxPartitionFetchBytes,
    onGap,
    ...(processAfter === undefined ? {} : { processAfter }),
  };
  const inWorkers = config.role !== "notifier" && config.workers > 1 && workers !== undefined;
  const stage = config.role === "notifier" || inWorkers ? null : kafkaEngineStage({
    guarantee: config.guarantee,
    kafka,
    logger,
    output,
    groupId: config.groups.engine,
    eventsTopic: config.topics.events,
    stateTopic: config.topics.state,
    acceptEmptyState: config.acceptEmptyState,
    eventPartitions,
    shrink,
    pipeline: {
      ...pipelineSettings(config, registry, logger, observer),
      decode: { requireKey: false, maxFutureSkewMs: config.maxFutureSkewMs },
    },
    consumer,
  });
  const engine: RunningEngine | null = inWorkers
    ? workers!({ config, logger, observer, signal: startup?.signal })
    : stage && { ...stage, acknowledge: acknowledgeIn(stage, config.topics.alerts) };
  const gate = config.role === "engine" || silences === null
    ? null
    : kafkaSilenceGate(silences, kafka, output, config, logger.child({ stage: "notifier" }));
  // Read back before any alert is notified: what a silence held before a restart is still owed.
  if (gate !== null) await untilKafka(() => gate.start("assigned"), waitForKafka);
  const dispatcher = gate === null || notifiers === null
    ? null
    : dispatcherFor(config, logger, notifiers, output, gate, registry);
  const notifierSource = dispatcher === null ? null : kafkaNotifierStage({
    kafka,
    dispatcher,
    output,
    groupId: config.groups.notifier,
    alertsTopic: config.topics.alerts,
    dlqTopic: config.topics.dlq,
    logger: logger.child({ stage: "notifier" }),
    ...consumer,
    onAssign: (partitions) => gate?.assign(partitions),
    // A second past the deliveries' own grace: what finishes within it is committed.
    stopGraceMs: deliveryGraceMs(config) + 1000,
  });
  // Inhibition needs every partition's firing alerts, rebuilt from the topic before anything is notified.
  const firingView = dispatcher === null ? null : new FiringView({
    kafka,
    alertsTopic: config.topics.alerts,
    groupPrefix: config.groups.notifier,
    logger: logger.child({ stage: "notifier" }),
    observe: (alert) => dispatcher.observeFiring(alert),
  });
  const sources: SourceView[] = [];
  if (engine !== null) sources.push(engine.source);
  if (notifierSource !== null) sources.push(notifierSource);

  let limits: LimitsTopicFollower | LimitsTopicWatch | null = null;
  let resolveDone!: () => void;
  const done = new Promise<void>((r) => resolveDone = r);
  let stopping: Promise<void> | null = null;
  const service: EngineService & Partial<Pick<Service, "notifiers" | "silences">> = {
    pipeline: engine?.pipeline ?? null,
    dispatcher,
    ...(notifiers === null ? {} : { notifiers }),
    ...(silences === null ? {} : { silences }),
    registry,
    done,
    dlqFile: null,
    output: stage?.output ?? output,
    acknowledge: (id, by) => engine?.acknowledge(id, by) ?? Promise.resolve(null),
    ...(engine?.refresh !== undefined ? { refresh: engine.refresh } : {}),
    flush: () => engine?.flush() ?? Promise.resolve(),
    kafka: { client: kafka, sources },
    ready: () => sources.every((s) => s.joined && s.held.size === 0),
    stop: () =>
      stopping ??= (async () => {
        // Retries in progress are given up, not dead-lettered: their offsets stay uncommitted. Tries
        // in flight finish (within half the shutdown budget) and are committed by the source's stop.
        const delivering = dispatcher?.close();
        await engine?.stop();
        await limits?.stop();
        await notifierSource?.stop();
        await delivering;
        // After the deliveries: what a released alert's delivery forgets is written before the close.
        await gate?.close();
        await silences?.close();
        await output.close();
        await notifiers?.close();
        resolveDone();
      })(),
  };
  // The HTTP server reads the service from here on: with engine workers, a worker that joined first
  // processes records while the others start, and /metrics and the API count them at once.
  // (What startService returns too: a Service whose notifiers are there when its role has them.)
  attach?.(service as Service);
  // Engine workers follow the limits topic themselves, each for its own rule set, and the main thread
  // says what is wrong with it: once for the process, not once per worker.
  limits = stage !== null
    ? await followLimitsTopic(config, kafka, registry, logger, !worker)
    : inWorkers
    ? await watchLimitsTopic(config, kafka, logger)
    : null;
  // A stop that came while the topic was read to its end found no follower to stop: its timers would
  // outlive the service.
  if (stopping !== null) await limits?.stop();
  await beforeConsume?.();
  if (engine !== null) await untilKafka(() => engine.start(), waitForKafka);
  if (firingView !== null) await untilKafka(() => firingView.start(), waitForKafka);
  await notifierSource?.start();
  logger.info("Consuming from Kafka", {
    brokers: config.brokers.join(","),
    role: config.role,
    guarantee: config.role === "notifier" ? "at_least_once" : config.guarantee,
  });

  return service;
}

/** Acknowledgements in this thread: the engine's own episodes, published through its own output. */
function acknowledgeIn(
  engine: { pipeline: Pipeline; output: Output; restored?: () => Promise<void> },
  alertsTopic: string,
): RunningEngine["acknowledge"] {
  return async (id, by) => {
    // An ack that comes while a rebalance moves partitions here finds their episodes once restored
    // (with WORKERS=2 one came ~30 ms too early and was answered 404); 10 s at most, so the request
    // does not hang on a slow restore.
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([engine.restored?.(), new Promise((r) => timer = setTimeout(r, 10_000))]);
    clearTimeout(timer);
    return acknowledgeAlert(engine.pipeline, engine.output, alertsTopic, id, by);
  };
}

/** Records deleted before they were read (retention, DeleteRecords): one DLQ record per gap. */
function deletedRecords(gap: OffsetGap, dlqTopic: string): OutRecord {
  return {
    topic: dlqTopic,
    key: null,
    value: JSON.stringify(buildDlqRecord({
      topic: gap.topic,
      key: null,
      value: null,
      partition: gap.partition,
      offset: gap.from,
      stage: "source",
      error:
        `Records ${gap.from} to ${gap.to} of partition ${gap.partition} were deleted before they were read (${gap.records} records)`,
      extra: { gap_from: gap.from, gap_to: gap.to, gap_records: gap.records },
    })),
  };
}

async function startLocal(
  config: Config,
  logger: Logger,
  registry: RuleRegistry,
  observer: PipelineObserver | undefined,
): Promise<Service> {
  const queue = new AsyncQueue<SensorAlert>();
  const output = new LocalOutput(
    queue,
    config.topics.alerts,
    new Map([[config.topics.dlq, config.dlqFile], [config.topics.aggregates, config.aggregatesFile]]),
  );
  const notifiers = await createNotifiers(config, logger, (records) => output.send(records));
  const silences = fileSilences(config, logger);
  await silences.start();
  const gate = fileSilenceGate(silences, config, logger.child({ stage: "notifier" }));
  await gate.start("all");
  const dispatcher = dispatcherFor(config, logger, notifiers, output, gate, registry);
  const notifierLoop = localNotifierStage(queue, dispatcher, logger.child({ stage: "notifier" }));

  let stopped = false;
  const source = config.input !== null ? replaySource(config.input, logger) : simulatorSource({
    embedded: config.embedded,
    eventsTopic: config.topics.events,
    dlqFile: config.dlqFile,
    logger,
    stopped: () => stopped,
  });
  const engine = localEngineStage({
    source,
    output,
    logger,
    pipeline: {
      ...pipelineSettings(config, registry, logger, observer),
      decode: { maxFutureSkewMs: config.maxFutureSkewMs },
    },
  });

  let resolveDone!: () => void;
  const done = new Promise<void>((r) => resolveDone = r);
  const finish = async () => {
    // Held notifications would keep the queue from draining until their interval ends.
    dispatcher.endStorms();
    await queue.drain();
    queue.close();
    await notifierLoop;
    // Releases of held alerts still retrying are given up (still held on file: the next start
    // releases them), tries in flight finish first; the gate then waits for nothing else.
    await dispatcher.close();
    await notifiers.close();
    await gate.close();
    await silences.close();
    resolveDone();
  };
  const summary = setInterval(() => logSummary(engine.pipeline, logger), config.statsIntervalMs);
  let failure: string | null = null;
  engine.run(() => stopped).finally(() => clearInterval(summary)).then(finish, (err) => {
    // Said once, by main, as the last line before the non-zero exit.
    failure = `${source.name} failed: ${(err as Error)?.message ?? String(err)}`;
    return finish();
  });

  return {
    pipeline: engine.pipeline,
    dispatcher,
    notifiers,
    registry,
    done,
    dlqFile: config.dlqFile,
    output,
    acknowledge: acknowledgeIn({ pipeline: engine.pipeline, output }, config.topics.alerts),
    flush: () => engine.flush(),
    kafka: null,
    silences,
    sourceFailure: () => failure,
    ready: () => true,
    stop: async () => {
      stopped = true;
      await done;
    },
  };
}
