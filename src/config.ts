/**
 * The service's configuration (`deno task start`): its settings are declared in
 * src/config/settings.ts, with every other command's.
 *
 * @module
 */
import { usage } from "./config/docs.ts";
import { type Env, readSettings, type Values } from "./config/setting.ts";
import { commands } from "./config/settings.ts";

export type Role = "all" | "engine" | "notifier";

export interface Config {
  brokers: string[];
  input: string | null;
  role: Role;
  rulesDir: string;
  pluginsDir: string;
  topics: { events: string; alerts: string; dlq: string; aggregates: string; state: string };
  /** A compacted topic of per-sensor limits to follow (LIMITS_TOPIC), or null. */
  limitsTopic: string | null;
  /** `exactly_once`: transactions and a state changelog; `at_least_once`: plain commits after produce. */
  guarantee: "exactly_once" | "at_least_once";
  /** Consumer group session timeout: how soon a dead member's partitions move (KAFKA_SESSION_TIMEOUT_MS). */
  sessionTimeoutMs: number;
  /**
   * Most bytes a fetch returns per partition (KAFKA_MAX_PARTITION_FETCH_BYTES, Kafka's
   * max.partition.fetch.bytes): larger fetches carry more events per round trip and cost memory.
   */
  maxPartitionFetchBytes: number;
  /**
   * `--accept-empty-state`: start exactly-once from empty state although the changelog is missing
   * and the group has committed offsets (a flag, not a variable: it must not stay in a deployment).
   */
  acceptEmptyState: boolean;
  /** Kafka mode: engine workers (worker threads) in this process; 1 runs the engine in the main thread. */
  workers: number;
  /** Each engine worker's old-generation heap limit in MiB (V8's `maxOldGenerationSizeMb`). */
  workerHeapMib: number;
  /** Sensors whose state one partition's engine keeps (MAX_SENSORS_PER_PARTITION); see RuleEngine. */
  maxSensorsPerPartition: number;
  /** Tests only (WORKERS_TEST_CRASH): engine worker `worker` throws once it has processed `events`. */
  workersTestCrash: { worker: number; events: number; heap: boolean } | null;
  groups: { engine: string; notifier: string };
  eventPartitions: number;
  dlqFile: string;
  /** Embedded and replay modes: where published window aggregates go. */
  aggregatesFile: string;
  /** Where silences are kept: the compacted topic with Kafka, else the file. */
  silences: { topic: string; file: string };
  embedded: { rate: number; anomaly: number; seed: number | null; sensors: number };
  statsIntervalMs: number;
  /** Events stamped further ahead of the wall clock are dead-lettered; Infinity when off. */
  maxFutureSkewMs: number;
  /** After a stop signal, how long in-flight work may take before the process exits 1. */
  shutdownTimeoutMs: number;
  /** The operator's HTTP API and dashboard; port 0 picks a free port. */
  http: HttpConfig;
}

export interface HttpConfig {
  host: string;
  port: number;
  token: string | null;
  /** More names `Host` may carry beside loopback and HTTP_HOST, e.g. a proxy's (HTTP_ALLOWED_HOSTS). */
  allowedHosts: string[];
  /** Live dashboard streams served at once; one more gets 503 (HTTP_MAX_STREAMS). */
  maxStreams: number;
  /** Open connections at once; one more takes the idle-longest one's slot (HTTP_MAX_CONNECTIONS). */
  maxConnections: number;
  /** A request's headers and body must arrive within this (HTTP_REQUEST_TIMEOUT_MS). */
  requestTimeoutMs: number;
}

/** Shorter tokens can be guessed; 16 characters of `openssl rand -hex 32` are 64 bits. */
export const MIN_TOKEN_LENGTH = 16;

const settings = commands.start.settings;

/** The HTTP limits when not configured (why these: src/config/settings.ts). */
export const httpDefaults = {
  maxStreams: settings.maxStreams.default,
  maxConnections: settings.maxConnections.default,
  requestTimeoutMs: settings.requestTimeoutMs.default,
} as const;

/** `deno task start --help`, generated from the settings. */
export const USAGE: string = usage(commands.start);

/** The three ways to run. */
export type RunMode = "kafka" | "replay" | "embedded";

/**
 * How the service runs: an `--input` is replayed even when Kafka is configured (a broker in the
 * environment must not turn a replay into a consumer); without either, the embedded simulator.
 */
export function runMode(config: Pick<Config, "brokers" | "input">): RunMode {
  if (config.input !== null) return "replay";
  return config.brokers.length > 0 ? "kafka" : "embedded";
}

/**
 * Flags win over the environment, which wins over defaults; an empty variable is unset, an empty flag
 * an error. Throws a TypeError that names the flag or variable.
 */
export function loadConfig(args: string[], env: Env): Config | "help" {
  const v = readSettings(settings, args, env);
  if (v.help) return "help";
  if (v.role !== "all" && v.brokers.length === 0) {
    throw new TypeError(
      `--role ${v.role} needs Kafka (--brokers or KAFKA_BROKERS): the stages talk over the alerts topic`,
    );
  }
  return {
    brokers: v.brokers,
    input: v.input,
    role: v.role,
    rulesDir: v.rulesDir,
    pluginsDir: v.pluginsDir,
    topics: {
      events: v.sensorTopic,
      alerts: v.alertsTopic,
      dlq: v.dlqTopic,
      aggregates: v.aggregatesTopic,
      state: v.stateTopic ?? `${v.consumerGroup}-state-changelog`,
    },
    limitsTopic: v.limitsTopic,
    guarantee: v.guarantee,
    workers: v.workers,
    workerHeapMib: v.workerHeapMib,
    maxSensorsPerPartition: v.maxSensorsPerPartition,
    workersTestCrash: testCrash(v.workersTestCrash),
    acceptEmptyState: v.acceptEmptyState,
    sessionTimeoutMs: v.sessionTimeoutMs,
    maxPartitionFetchBytes: v.maxPartitionFetchBytes,
    groups: { engine: v.consumerGroup, notifier: v.notifierGroup },
    eventPartitions: v.sensorPartitions,
    dlqFile: v.dlqFile,
    aggregatesFile: v.aggregatesFile,
    silences: { topic: v.silencesTopic, file: v.silencesFile },
    embedded: { rate: v.rate, anomaly: v.anomaly, seed: v.seed, sensors: v.sensors },
    statsIntervalMs: 10_000,
    maxFutureSkewMs: v.maxFutureSkewMs,
    shutdownTimeoutMs: v.shutdownTimeoutMs,
    http: httpConfig(v),
  };
}

/** `K:N` of WORKERS_TEST_CRASH: worker K (from 0), after N events; `K:N:heap`: by filling its heap. */
function testCrash(text: string | null): Config["workersTestCrash"] {
  if (text === null) return null;
  const m = /^(\d+):(\d+)(:heap)?$/.exec(text.trim());
  if (m === null) {
    throw new TypeError(
      `WORKERS_TEST_CRASH must be K:N or K:N:heap (worker K, after N events), got "${text}"`,
    );
  }
  return { worker: Number(m[1]), events: Number(m[2]), heap: m[3] !== undefined };
}

function httpConfig(v: Values<typeof settings>): HttpConfig {
  const { httpHost: host, apiToken: token, maxStreams, maxConnections } = v;
  // Beyond loopback anyone on the network could acknowledge alerts: refuse rather than serve open.
  if (token === null && !isLoopback(host)) {
    throw new TypeError(`HTTP_HOST "${host}" is reachable from other machines: set API_TOKEN to serve on it`);
  }
  // The value is a secret: only its length goes into the message.
  if (token !== null && token.length < MIN_TOKEN_LENGTH) {
    throw new TypeError(
      `API_TOKEN must be at least ${MIN_TOKEN_LENGTH} characters long (it has ${token.length}): ` +
        `generate one with "openssl rand -hex 32"`,
    );
  }
  // Streams hold their connections: with no place left beside them, nobody could even get a 503.
  if (maxStreams >= maxConnections) {
    throw new TypeError(
      `HTTP_MAX_STREAMS (${maxStreams}) must be below HTTP_MAX_CONNECTIONS (${maxConnections})`,
    );
  }
  return {
    host,
    port: v.httpPort,
    token,
    allowedHosts: v.allowedHosts,
    maxStreams,
    maxConnections,
    requestTimeoutMs: v.requestTimeoutMs,
  };
}

export function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || host === "[::1]" || /^127\.\d+\.\d+\.\d+$/.test(host);
}
