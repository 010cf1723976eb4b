/**
 * Wires the stages for one of the three ways to run: Kafka, NDJSON replay, or the embedded simulator.
 *
 * @module
 */
import type { Kafka } from "kafkajs";
import type { Config } from "./config.ts";
import type { SensorAlert } from "./contract/schemas.ts";
import { buildDlqRecord } from "./dlq/record.ts";
import { type Logger, print } from "./log.ts";
import { Dispatcher } from "./notifiers/dispatcher.ts";
import type { NotifierRegistry } from "./notifiers/registry.ts";
import { createNotifiers, type DeadLetterSink } from "./notifiers/setup.ts";
import { AsyncQueue } from "./transport/queue.ts";
import { kafkaNotifierStage, localNotifierStage } from "./notifiers/stage.ts";
import { type InputRecord, Pipeline, type PipelineObserver } from "./pipeline.ts";
import { formatProblem } from "./rules/load.ts";
import { RuleRegistry } from "./rules/registry.ts";
import { watchDirectory } from "./watch.ts";
import { DEFAULT_DEDUPE_CAPACITY } from "./decode/dedupe.ts";
import { KafkaSource, type OffsetGap } from "./source/kafka.ts";
import { readNdjson } from "./source/ndjson.ts";
import { EventGenerator, sensorFleet } from "./simulator/sensors.ts";
import { formatStatsTable } from "./stats/stats.ts";
import {
  createKafka,
  KafkaOutput,
  kafkaSettingsFromEnv,
  untilKafka,
  type UntilKafkaOptions,
} from "./transport/kafka.ts";
import { prepareTopics } from "./transport/topics.ts";
import { LocalOutput } from "./transport/local.ts";
import { type ExactlyOnceEngine, exactlyOnceEngine } from "./state/exactly_once.ts";
import type { Output } from "./transport/output.ts";
import { leftGroup } from "./transport/transactional.ts";

export interface Service {
  pipeline: Pipeline | null;
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
  /** Exactly-once mode: publishes clock-driven output with the state it changed (else `output`). */
  flush?: () => Promise<void>;
  /** Where the engine writes: the HTTP API publishes alert acknowledgements through it. */
  output: Output;
  /** The Kafka client and this process's consumers (lag, readiness); null without a broker. */
  kafka: { client: Kafka; sources: readonly KafkaSource[] } | null;
  /** Why the source stopped before its end (replay, simulator), in one line; null when it did not. */
  sourceFailure?: () => string | null;
}

export interface ServiceOptions {
  config: Config;
  logger: Logger;
  observer?: PipelineObserver;
  /** What start-up waits for (the HTTP server's readiness reads it); aborting it gives up waiting. */
  startup?: Startup;
}

/** Start-up progress, reported by `/readyz` before the service is attached. */
export interface Startup {
  /** Why the service is not up yet, e.g. "waiting for Kafka at 127.0.0.1:9092: connection refused". */
  reason: string | null;
  /** A shutdown during start-up: waiting for the broker stops (startService throws). */
  signal?: AbortSignal;
}

export async function startService({ config, logger, observer, startup }: ServiceOptions): Promise<Service> {
  const registry = new RuleRegistry(config.rulesDir);
  const loaded = await registry.reload();
  // Later a missing directory keeps the rules in force; at start there are none to keep.
  if (registry.directoryProblem !== null) throw new Error(registry.directoryProblem.message);
  for (const p of loaded.problems) {
    logger.error(`Rule problem: ${formatProblem(p)}`, { rule: p.rule_id, file: p.file });
  }
  logger.info("Rules loaded", { rules: loaded.ruleSet.rules.length, dir: config.rulesDir });

  const deadLetter: DeadLetterSink = {};
  const notifiers = await createNotifiers(config, logger, deadLetter);
  const service = config.brokers.length > 0 && config.input === null
    ? await startKafka(config, logger, registry, notifiers, observer, deadLetter, startup)
    : startLocal(config, logger, registry, notifiers, observer, deadLetter);
  return withRuleClock(service, config, logger, observer);
}

/**
 * Hot reload and the engine clock, the same in every mode: rule files are re-read on change (the new
 * set is swapped in between two events), and a tick each second closes windows and notices silence.
 */
function withRuleClock(
  service: Service,
  config: Config,
  logger: Logger,
  observer?: PipelineObserver,
): Service {
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
    ticking = ticking.then(async () => {
      if (service.flush !== undefined) {
        await service.flush().catch((error) =>
          // The transaction said it once already; the next tick after the rejoin publishes it.
          leftGroup(error)
            ? logger.debug("Clock flush skipped: the group rebalances", { error })
            : logger.error("Clock flush failed", { error })
        );
        return;
      }
      const out = pipeline.tick();
      if (out.length === 0) return;
      for (let attempt = 1;; attempt++) {
        try {
          await service.output.send(out);
          return;
        } catch (err) {
          logger.error("Publishing tick output failed, retrying", { attempt, error: err });
          await new Promise((r) => setTimeout(r, Math.min(5000, 250 * 2 ** attempt)));
        }
      }
    });
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

async function startKafka(
  config: Config,
  logger: Logger,
  registry: RuleRegistry,
  notifiers: NotifierRegistry,
  observer: PipelineObserver | undefined,
  deadLetter: DeadLetterSink,
  startup?: Startup,
): Promise<Service> {
  // kafkajs gives up after ~10 s; the service's own loops then wait with backoff and say so (the
  // consumers' restarts, the outputs' retries). With 10 retries (~34 s) a broker outage went
  // unnoticed by readiness for half a minute.
  const kafka: Kafka = createKafka(kafkaSettingsFromEnv(config.brokers), logger, { retries: 5 });
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
        acceptEmptyState: config.acceptEmptyState,
      }, logger);
    } finally {
      await admin.disconnect().catch(() => {});
    }
  }, waitForKafka);

  const output = new KafkaOutput(kafka, { retryUntilClosed: true, logger });
  await untilKafka(() => output.connect(), waitForKafka);
  // Records deleted before they were read (retention, DeleteRecords): one DLQ record per gap.
  const onGap = (gap: OffsetGap) =>
    output.send([{
      topic: config.topics.dlq,
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
    }]);
  deadLetter.write = (records) => output.send(records);
  const sources: KafkaSource[] = [];
  let pipeline: Pipeline | null = null;
  let dispatcher: Dispatcher | null = null;

  let engineOutput: Output = output;
  let eos: ExactlyOnceEngine | null = null;
  if (config.role !== "notifier" && config.guarantee === "exactly_once") {
    eos = exactlyOnceEngine({
      kafka,
      logger,
      groupId: config.groups.engine,
      eventsTopic: config.topics.events,
      stateTopic: config.topics.state,
      transactionalId: `${config.groups.engine}-${config.instanceId}`,
      sessionTimeoutMs: config.sessionTimeoutMs,
      maxBytesPerPartition: config.maxPartitionFetchBytes,
      onGap,
      pipeline: {
        ruleSet: () => registry.ruleSet,
        topics: config.topics,
        logger,
        // One filter per partition: together they remember as many ids as the single one of
        // at-least-once (six filters of 100,000 ids each held ~50 MB more).
        dedupeCapacity: Math.max(10_000, Math.ceil(DEFAULT_DEDUPE_CAPACITY / eventPartitions)),
        decode: { requireKey: false, maxFutureSkewMs: config.maxFutureSkewMs },
        ...(observer ? { observer } : {}),
      },
    });
    pipeline = eos.pipeline;
    engineOutput = eos.output;
    sources.push(eos.source);
  } else if (config.role !== "notifier") {
    const p = pipeline = new Pipeline({
      ruleSet: () => registry.ruleSet,
      output,
      topics: config.topics,
      logger,
      decode: { requireKey: false, maxFutureSkewMs: config.maxFutureSkewMs },
      ...(observer ? { observer } : {}),
    });
    sources.push(
      new KafkaSource({
        kafka,
        sessionTimeoutMs: config.sessionTimeoutMs,
        maxBytesPerPartition: config.maxPartitionFetchBytes,
        onGap,
        groupId: config.groups.engine,
        topic: config.topics.events,
        logger: logger.child({ stage: "engine" }),
        // The produce is not awaited: the next fetch overlaps it, and the source commits the batch's
        // offset once it is acknowledged. The output keeps the order of the batches' records.
        handle: (records, ctx) => {
          const out = p.evaluate(records);
          if (out.length > 0) ctx.commitAfter(output.send(out));
          return Promise.resolve();
        },
      }),
    );
  }
  if (config.role !== "engine") {
    const d = dispatcher = new Dispatcher({
      notifiers: () => notifiers.set,
      logger: logger.child({ stage: "notifier" }),
      deadLetter: (records) => output.send(records),
      dlqTopic: config.topics.dlq,
      alertsTopic: config.topics.alerts,
    });
    sources.push(kafkaNotifierStage({
      kafka,
      dispatcher: d,
      output,
      groupId: config.groups.notifier,
      alertsTopic: config.topics.alerts,
      dlqTopic: config.topics.dlq,
      logger: logger.child({ stage: "notifier" }),
      sessionTimeoutMs: config.sessionTimeoutMs,
      maxBytesPerPartition: config.maxPartitionFetchBytes,
      onGap,
    }));
  }
  if (eos !== null) await untilKafka(() => eos!.start(), waitForKafka);
  for (const s of sources) if (s !== eos?.source) await s.start();
  logger.info("Consuming from Kafka", {
    brokers: config.brokers.join(","),
    role: config.role,
    guarantee: config.role === "notifier" ? "at_least_once" : config.guarantee,
  });

  let resolveDone!: () => void;
  const done = new Promise<void>((r) => resolveDone = r);
  let stopping: Promise<void> | null = null;
  return {
    pipeline,
    dispatcher,
    notifiers,
    registry,
    done,
    dlqFile: null,
    output: engineOutput,
    ...(eos !== null ? { flush: () => eos!.flush() } : {}),
    kafka: { client: kafka, sources },
    ready: () => sources.every((s) => s.joined),
    stop: () =>
      stopping ??= (async () => {
        // Retries in progress are given up, not dead-lettered: their offsets stay uncommitted.
        dispatcher?.close();
        for (const s of sources) if (s !== eos?.source) await s.stop();
        await eos?.stop();
        await output.close();
        await notifiers.close();
        resolveDone();
      })(),
  };
}

function startLocal(
  config: Config,
  logger: Logger,
  registry: RuleRegistry,
  notifiers: NotifierRegistry,
  observer: PipelineObserver | undefined,
  deadLetter: DeadLetterSink,
): Service {
  const queue = new AsyncQueue<SensorAlert>();
  const output = new LocalOutput(
    queue,
    config.topics.alerts,
    new Map([[config.topics.dlq, config.dlqFile], [config.topics.aggregates, config.aggregatesFile]]),
  );
  deadLetter.write = (records) => output.send(records);
  const pipeline = new Pipeline({
    ruleSet: () => registry.ruleSet,
    output,
    topics: config.topics,
    logger,
    decode: { maxFutureSkewMs: config.maxFutureSkewMs },
    // A replay runs in event time alone, as `rules:test` does: the same input gives the same alerts.
    clock: config.input !== null ? "event" : "wall",
    ...(observer ? { observer } : {}),
  });
  const dispatcher = new Dispatcher({
    notifiers: () => notifiers.set,
    logger: logger.child({ stage: "notifier" }),
    deadLetter: (records) => output.send(records),
    dlqTopic: config.topics.dlq,
    alertsTopic: config.topics.alerts,
  });
  const notifierLoop = localNotifierStage(queue, dispatcher, logger.child({ stage: "notifier" }));

  let stopped = false;
  let resolveDone!: () => void;
  const done = new Promise<void>((r) => resolveDone = r);
  const finish = async () => {
    await queue.drain();
    queue.close();
    await notifierLoop;
    await notifiers.close();
    resolveDone();
  };

  let sourceDone: Promise<void>;
  if (config.input !== null) {
    const input = config.input;
    logger.info("Replaying NDJSON", { input: input === "-" ? "stdin" : input });
    sourceDone = (async () => {
      for await (const batch of readNdjson(input, 500)) {
        if (stopped) break;
        await pipeline.process(batch);
      }
      const last = pipeline.flush();
      if (last.length > 0) await output.send(last);
    })();
  } else {
    const gen = new EventGenerator({
      anomalyProbability: config.embedded.anomaly,
      ...(config.embedded.seed !== null ? { seed: config.embedded.seed } : {}),
      sensors: sensorFleet(config.embedded.sensors),
    });
    logger.info("Embedded simulator running: no broker needed", {
      rate: config.embedded.rate,
      sensors: gen.sensors.length,
    });
    print(
      `Running on the embedded simulator. To consume from Kafka: KAFKA_BROKERS=127.0.0.1:9092 deno task start ` +
        `(a local broker: deno task kafka:up). DLQ records go to ${config.dlqFile}`,
    );
    // At a readable rate every event gets a line; faster runs get the periodic summary only.
    const showEvents = config.embedded.rate <= 20;
    const intervalMs = Math.max(1, 1000 / config.embedded.rate);
    const perTick = Math.max(1, Math.round(config.embedded.rate * intervalMs / 1000));
    sourceDone = (async () => {
      while (!stopped) {
        const now = Date.now();
        const batch: InputRecord[] = [];
        for (let i = 0; i < perTick; i++) {
          const e = gen.next(now);
          if (showEvents) logger.info(`Event ${e.sensor_id} ${e.value} ${e.unit}`, { event_id: e.event_id });
          batch.push({
            topic: config.topics.events,
            partition: null,
            offset: null,
            key: `${e.sensor_type}:${e.sensor_id}`,
            value: JSON.stringify(e),
          });
        }
        await pipeline.process(batch);
        await new Promise((r) => setTimeout(r, intervalMs));
      }
    })();
  }
  const summary = setInterval(() => logSummary(pipeline, logger), config.statsIntervalMs);
  let failure: string | null = null;
  sourceDone.finally(() => clearInterval(summary)).then(finish, (err) => {
    // Said once, by main, as the last line before the non-zero exit.
    const what = config.input === null ? "The simulator" : `Replay of "${config.input}"`;
    failure = `${what} failed: ${(err as Error)?.message ?? String(err)}`;
    return finish();
  });

  return {
    pipeline,
    dispatcher,
    notifiers,
    registry,
    done,
    dlqFile: config.dlqFile,
    output,
    kafka: null,
    sourceFailure: () => failure,
    ready: () => true,
    stop: async () => {
      stopped = true;
      await done;
    },
  };
}

function logSummary(p: Pipeline, logger: Logger): void {
  const dlq = p.counters.dead_lettered;
  logger.info("Summary", {
    events: p.counters.events,
    alerts: p.counters.alerts,
    open_alerts: p.tracker.size,
    dead_lettered: dlq,
    sensors: p.stats.size,
  });
}

/** The shutdown summary: per-sensor count and average, like the original consumer. */
export function printSummary(service: Service): void {
  const p = service.pipeline;
  if (p === null) return;
  print(formatStatsTable(p.stats.all()));
  // Events, not DLQ records: events = accepted + duplicates + dead_lettered.
  const dlq = p.counters.dead_lettered;
  const notified = service.dispatcher?.counters.dead_lettered ?? 0;
  print(
    `events=${p.counters.events} accepted=${p.counters.accepted} duplicates=${p.counters.duplicates} ` +
      `dead_lettered=${dlq} alerts=${p.counters.alerts} notifications_dead_lettered=${notified}`,
  );
  if (dlq + notified > 0 && service.dlqFile !== null) {
    print(`Dead-lettered messages with their reasons: ${service.dlqFile}`);
  }
}
