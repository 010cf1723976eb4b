import { parseArgs } from "node:util";
import { DEFAULT_MAX_FUTURE_SKEW_MS } from "./decode/decode.ts";
import { durationMs } from "./rules/schema.ts";

export type Role = "all" | "engine" | "notifier";

export interface Config {
  brokers: string[];
  input: string | null;
  role: Role;
  rulesDir: string;
  pluginsDir: string;
  topics: { events: string; alerts: string; dlq: string; aggregates: string; state: string };
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
  /** Names this process's transactional producer; stable across restarts to fence a crashed predecessor. */
  instanceId: string;
  groups: { engine: string; notifier: string };
  eventPartitions: number;
  dlqFile: string;
  /** Embedded and replay modes: where published window aggregates go. */
  aggregatesFile: string;
  embedded: { rate: number; anomaly: number; seed: number | null; sensors: number };
  statsIntervalMs: number;
  /** Events stamped further ahead of the wall clock are dead-lettered; Infinity when off. */
  maxFutureSkewMs: number;
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
  /** Open connections at once; more are closed on accept (HTTP_MAX_CONNECTIONS). */
  maxConnections: number;
  /** A request's headers and body must arrive within this (HTTP_REQUEST_TIMEOUT_MS). */
  requestTimeoutMs: number;
}

/** Shorter tokens can be guessed; 16 characters of `openssl rand -hex 32` are 64 bits. */
export const MIN_TOKEN_LENGTH = 16;

/**
 * The HTTP limits when not configured. Every live stream holds about 80-110 KB (4,000 streams took
 * RSS from 76 to 403 MB; 64 from 81 to 88 MB); connections beyond streams are for the API, probes
 * and scrapes, and one that has not sent its request within the timeout is closed.
 */
export const httpDefaults = {
  maxStreams: 64,
  maxConnections: 256,
  requestTimeoutMs: 10_000,
} as const;

export const USAGE = `Usage: deno task start [options]

Sources (pick one; the embedded simulator is the default):
  --brokers HOST:PORT[,..]  Consume from Kafka (or set KAFKA_BROKERS)
  --input FILE|-            Replay NDJSON events from a file or stdin, then exit

Options:
  --role all|engine|notifier  Which stages this process runs (default all)
  --rules DIR                 Rule files (default rules, or RULES_DIR)
  --rate N                    Embedded simulator: events per second (default 6)
  --anomaly P                 Embedded simulator: anomaly probability 0..1 (default 0.05)
  --seed N                    Embedded simulator: PRNG seed
  --http-port N               API and dashboard port (default 8080, or HTTP_PORT; 0 picks a free one)
  --accept-empty-state        Exactly-once: start from empty state though the state changelog is gone
  -h, --help                  Show this help

Environment: KAFKA_BROKERS, KAFKA_CLIENT_ID, KAFKA_SSL, KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME,
KAFKA_SASL_PASSWORD, SENSOR_TOPIC, ALERTS_TOPIC, DLQ_TOPIC, AGGREGATES_TOPIC, CONSUMER_GROUP,
NOTIFIER_GROUP, SENSOR_PARTITIONS, PROCESSING_GUARANTEE, STATE_TOPIC, INSTANCE_ID, KAFKA_SESSION_TIMEOUT_MS,
KAFKA_MAX_PARTITION_FETCH_BYTES, DLQ_FILE, RULES_DIR, LOG_LEVEL, HTTP_HOST, HTTP_PORT, API_TOKEN,
HTTP_ALLOWED_HOSTS, HTTP_MAX_STREAMS, HTTP_MAX_CONNECTIONS, HTTP_REQUEST_TIMEOUT_MS,
MAX_FUTURE_SKEW (default 5m; "off" accepts any future timestamp)`;

/** Flags win over the environment, which wins over defaults. Throws TypeError on a bad value. */
export function loadConfig(
  args: string[],
  env: Readonly<Record<string, string | undefined>>,
): Config | "help" {
  const { values } = parseArgs({
    args,
    options: {
      brokers: { type: "string" },
      input: { type: "string" },
      role: { type: "string" },
      rules: { type: "string" },
      plugins: { type: "string" },
      rate: { type: "string" },
      anomaly: { type: "string" },
      seed: { type: "string" },
      sensors: { type: "string" },
      "http-port": { type: "string" },
      "accept-empty-state": { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) return "help";
  const brokers = (values.brokers ?? env.KAFKA_BROKERS ?? "").split(",").map((s) => s.trim()).filter(Boolean);
  const role = values.role ?? "all";
  if (role !== "all" && role !== "engine" && role !== "notifier") {
    throw new TypeError(`--role must be one of all, engine, notifier, got "${role}"`);
  }
  if (role !== "all" && brokers.length === 0) {
    throw new TypeError(
      `--role ${role} needs Kafka (--brokers or KAFKA_BROKERS): the stages talk over the alerts topic`,
    );
  }
  return {
    brokers,
    input: values.input ?? null,
    role,
    rulesDir: values.rules ?? env.RULES_DIR ?? "rules",
    pluginsDir: values.plugins ?? env.PLUGINS_DIR ?? "plugins",
    topics: {
      events: env.SENSOR_TOPIC ?? "sensor-events",
      alerts: env.ALERTS_TOPIC ?? "alerts",
      dlq: env.DLQ_TOPIC ?? "dead-letter-queue",
      aggregates: env.AGGREGATES_TOPIC ?? "sensor-aggregates",
      state: env.STATE_TOPIC ?? `${env.CONSUMER_GROUP ?? "sensor-processors"}-state-changelog`,
    },
    guarantee: guarantee(env.PROCESSING_GUARANTEE),
    instanceId: env.INSTANCE_ID || crypto.randomUUID(),
    acceptEmptyState: values["accept-empty-state"] ?? false,
    sessionTimeoutMs: int("KAFKA_SESSION_TIMEOUT_MS", env.KAFKA_SESSION_TIMEOUT_MS ?? "30000", 1000),
    maxPartitionFetchBytes: int(
      "KAFKA_MAX_PARTITION_FETCH_BYTES",
      env.KAFKA_MAX_PARTITION_FETCH_BYTES ?? String(1024 * 1024),
      1024,
    ),
    groups: {
      engine: env.CONSUMER_GROUP ?? "sensor-processors",
      notifier: env.NOTIFIER_GROUP ?? "alert-notifiers",
    },
    eventPartitions: int("SENSOR_PARTITIONS", env.SENSOR_PARTITIONS ?? "6", 1),
    dlqFile: env.DLQ_FILE ?? "dlq.ndjson",
    aggregatesFile: env.AGGREGATES_FILE ?? "aggregates.ndjson",
    embedded: {
      rate: num("--rate", values.rate ?? "6", 0.001),
      anomaly: num("--anomaly", values.anomaly ?? "0.05", 0, 1),
      seed: values.seed === undefined ? null : int("--seed", values.seed, 0),
      sensors: values.sensors === undefined ? 0 : int("--sensors", values.sensors, 0),
    },
    statsIntervalMs: 10_000,
    maxFutureSkewMs: futureSkew(env.MAX_FUTURE_SKEW),
    http: httpConfig(values["http-port"], env),
  };
}

function httpConfig(
  portFlag: string | undefined,
  env: Readonly<Record<string, string | undefined>>,
): Config["http"] {
  const host = env.HTTP_HOST || "127.0.0.1";
  const port = int("--http-port", portFlag ?? env.HTTP_PORT ?? "8080", 0);
  if (port > 65535) throw new TypeError(`--http-port must be at most 65535, got "${port}"`);
  const token = env.API_TOKEN || null;
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
  const maxStreams = int("HTTP_MAX_STREAMS", env.HTTP_MAX_STREAMS || String(httpDefaults.maxStreams), 1);
  const maxConnections = int(
    "HTTP_MAX_CONNECTIONS",
    env.HTTP_MAX_CONNECTIONS || String(httpDefaults.maxConnections),
    2,
  );
  // Streams hold their connections: with no place left beside them, nobody could even get a 503.
  if (maxStreams >= maxConnections) {
    throw new TypeError(
      `HTTP_MAX_STREAMS (${maxStreams}) must be below HTTP_MAX_CONNECTIONS (${maxConnections})`,
    );
  }
  return {
    host,
    port,
    token,
    allowedHosts: (env.HTTP_ALLOWED_HOSTS ?? "").split(",").map((h) => h.trim().toLowerCase())
      .filter(Boolean),
    maxStreams,
    maxConnections,
    requestTimeoutMs: int(
      "HTTP_REQUEST_TIMEOUT_MS",
      env.HTTP_REQUEST_TIMEOUT_MS || String(httpDefaults.requestTimeoutMs),
      100,
    ),
  };
}

function futureSkew(value: string | undefined): number {
  if (value === undefined || value === "") return DEFAULT_MAX_FUTURE_SKEW_MS;
  if (value === "off") return Infinity;
  try {
    return durationMs(/^\d+(?:\.\d+)?$/.test(value) ? Number(value) : value);
  } catch (err) {
    throw new TypeError(`MAX_FUTURE_SKEW must be a duration like "5m", or "off", got "${value}"`, {
      cause: err,
    });
  }
}

export function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || host === "[::1]" || /^127\.\d+\.\d+\.\d+$/.test(host);
}

function guarantee(s: string | undefined): Config["guarantee"] {
  const g = (s ?? "exactly_once").toLowerCase().replace("-", "_");
  if (g !== "exactly_once" && g !== "at_least_once") {
    throw new TypeError(`PROCESSING_GUARANTEE must be "exactly_once" or "at_least_once", got "${s}"`);
  }
  return g;
}

function num(name: string, s: string, min: number, max = Infinity): number {
  const n = Number(s);
  if (!Number.isFinite(n) || n < min || n > max) {
    throw new TypeError(`${name} must be a number between ${min} and ${max}, got "${s}"`);
  }
  return n;
}

function int(name: string, s: string, min: number): number {
  const n = num(name, s, min);
  if (!Number.isInteger(n)) throw new TypeError(`${name} must be an integer, got "${s}"`);
  return n;
}
