/**
 * Every flag and environment variable of every command, declared once: name, type, default, validation
 * and doc line. `loadConfig` and each command read their part with `readSettings`; the commands' USAGE,
 * the README's Configuration table and each task's `--allow-env` list in deno.json are generated from
 * here (`deno task config:docs`, checked by tests/config/docs_test.ts).
 *
 * @module
 */
import { z } from "zod";
import { DURATION_PATTERN, durationMs } from "../contract/duration.ts";
import {
  integer,
  type Kind,
  list,
  number,
  oneOf,
  orNull,
  presence,
  type Setting,
  setting,
  type Settings,
  text,
  yesNo,
} from "./setting.ts";

const help = setting({ flag: "help", short: "h", kind: presence, default: false, doc: "Show this help" });

const brokers = setting({
  flag: "brokers",
  env: "KAFKA_BROKERS",
  arg: "HOST:PORT[,..]",
  kind: list(),
  default: [],
  doc: "Kafka bootstrap brokers",
});

const rulesDir = setting({
  flag: "rules",
  env: "RULES_DIR",
  arg: "DIR",
  kind: text,
  default: "rules",
  doc: "Rule files and notifiers.yaml",
});

const pluginsDir = setting({
  flag: "plugins",
  env: "PLUGINS_DIR",
  arg: "DIR",
  kind: text,
  default: "plugins",
  doc: "Notifier plugins",
});

const CONSUMER_GROUP = "sensor-processors";

/** The MAX_FUTURE_SKEW text: a duration, a number of seconds, or `off`. */
const futureSkew: Kind<number> = {
  expected: 'a duration like "5m", or "off"',
  schema: z.union([
    z.literal("off").transform(() => Infinity),
    z.string().regex(/^\d+(?:\.\d+)?$/).transform((s) => durationMs(Number(s))),
    z.string().regex(DURATION_PATTERN).transform((s) => durationMs(s)),
  ]),
};

/** `KAFKA_*` client settings, read by every command that talks to Kafka (`kafkaSettingsFromEnv`). */
export const kafkaClient = {
  clientId: setting({
    env: "KAFKA_CLIENT_ID",
    kind: text,
    default: "sensor-rules",
    doc: "Kafka client id",
  }),
  ssl: setting({
    env: "KAFKA_SSL",
    kind: yesNo,
    default: false,
    doc: "TLS to the brokers: true or 1, false or 0",
  }),
  saslMechanism: setting({
    env: "KAFKA_SASL_MECHANISM",
    kind: orNull(oneOf(["plain", "scram-sha-256", "scram-sha-512"], (s) => s.toLowerCase())),
    default: null,
    defaultDoc: "unset: no SASL",
    doc: "SASL mechanism: plain, scram-sha-256 or scram-sha-512",
  }),
  saslUsername: setting({ env: "KAFKA_SASL_USERNAME", kind: text, default: "", doc: "SASL user name" }),
  saslPassword: setting({
    env: "KAFKA_SASL_PASSWORD",
    kind: text,
    default: "",
    doc: "SASL password (kept out of logs)",
    secret: true,
  }),
} satisfies Settings;

/** Read by src/log.ts when the process logger is made, before any command validates its settings. */
export const logLevel = setting({
  env: "LOG_LEVEL",
  kind: oneOf(["debug", "info", "warn", "error"], (s) => s.toLowerCase()),
  default: "info",
  doc: "Least level logged: debug, info, warn or error; JSON lines, or readable lines on a terminal",
});

/** `deno task start` (main.ts). */
const start = {
  help,
  brokers: { ...brokers, doc: "Consume from Kafka; unset: the embedded simulator (or --input)" },
  input: setting({
    flag: "input",
    arg: "FILE|-",
    kind: orNull(text),
    default: null,
    defaultDoc: "unset",
    doc: "Replay NDJSON events from a file or stdin, then exit",
  }),
  role: setting({
    flag: "role",
    arg: "all|engine|notifier",
    kind: oneOf(["all", "engine", "notifier"]),
    default: "all",
    doc: "Which stages this process runs (engine and notifier talk over the alerts topic)",
  }),
  rulesDir,
  pluginsDir,
  rate: setting({
    flag: "rate",
    arg: "N",
    kind: number(0.001),
    default: 6,
    doc: "Embedded simulator: events per second in total",
  }),
  anomaly: setting({
    flag: "anomaly",
    arg: "P",
    kind: number(0, 1),
    default: 0.05,
    doc: "Simulator: probability 0..1 that a value is out of range",
  }),
  seed: setting({
    flag: "seed",
    arg: "N",
    kind: orNull(integer(0)),
    default: null,
    defaultDoc: "random",
    doc: "Simulator: PRNG seed, for a reproducible run",
  }),
  sensors: setting({
    flag: "sensors",
    arg: "N",
    kind: integer(0),
    default: 0,
    doc: "Simulator: generated sensors besides the six defaults (for load)",
  }),
  acceptEmptyState: setting({
    flag: "accept-empty-state",
    kind: presence,
    default: false,
    doc: "Exactly-once: start from empty state though the changelog is gone and the group has offsets",
  }),
  httpPort: setting({
    flag: "http-port",
    env: "HTTP_PORT",
    arg: "N",
    kind: integer(0, 65535),
    default: 8080,
    doc: "API and dashboard port; 0 picks a free one",
  }),
  httpHost: setting({
    env: "HTTP_HOST",
    kind: text,
    default: "127.0.0.1",
    doc: "API and dashboard address; beyond loopback it needs API_TOKEN",
  }),
  apiToken: setting({
    env: "API_TOKEN",
    kind: orNull(text),
    default: null,
    defaultDoc: "unset",
    doc: "Bearer token of the API, 16 characters or more (openssl rand -hex 32)",
    secret: true,
  }),
  allowedHosts: setting({
    env: "HTTP_ALLOWED_HOSTS",
    kind: list({ lowerCase: true }),
    default: [],
    defaultDoc: "unset",
    doc:
      "More names Host may carry beyond localhost, IP addresses and HTTP_HOST (a proxy's), comma-separated",
  }),
  // Every live stream holds about 80-110 KB (4,000 streams took RSS from 76 to 403 MB; 64 from 81 to
  // 88 MB); connections beyond streams are for the API, probes and scrapes.
  maxStreams: setting({
    env: "HTTP_MAX_STREAMS",
    kind: integer(1),
    default: 64,
    doc:
      "Live dashboard streams at once; one more takes the slot of a stream not read for 5 s, else of the address with two more than the asker, else 503 (below HTTP_MAX_CONNECTIONS)",
  }),
  maxConnections: setting({
    env: "HTTP_MAX_CONNECTIONS",
    kind: integer(2),
    default: 256,
    doc:
      "Open connections at once; one more takes the slot of the idle-longest connection of the address with the most, else it is closed on accept",
  }),
  requestTimeoutMs: setting({
    env: "HTTP_REQUEST_TIMEOUT_MS",
    kind: integer(100),
    default: 10_000,
    doc: "A request's headers and body must arrive within this, else 408; an answer unread as long closes it",
  }),
  sensorTopic: setting({ env: "SENSOR_TOPIC", kind: text, default: "sensor-events", doc: "Input topic" }),
  alertsTopic: setting({ env: "ALERTS_TOPIC", kind: text, default: "alerts", doc: "Alerts topic" }),
  dlqTopic: setting({ env: "DLQ_TOPIC", kind: text, default: "dead-letter-queue", doc: "Dead-letter topic" }),
  aggregatesTopic: setting({
    env: "AGGREGATES_TOPIC",
    kind: text,
    default: "sensor-aggregates",
    doc: "Window aggregates topic",
  }),
  consumerGroup: setting({
    env: "CONSUMER_GROUP",
    kind: text,
    default: CONSUMER_GROUP,
    doc: "Consumer group of the engine stage",
  }),
  notifierGroup: setting({
    env: "NOTIFIER_GROUP",
    kind: text,
    default: "alert-notifiers",
    doc: "Consumer group of the notifier stage",
  }),
  sensorPartitions: setting({
    env: "SENSOR_PARTITIONS",
    kind: integer(1),
    default: 6,
    doc: "Partitions of the topics a command creates",
  }),
  guarantee: setting({
    env: "PROCESSING_GUARANTEE",
    kind: oneOf(["exactly_once", "at_least_once"], (s) => s.toLowerCase().replace("-", "_")),
    default: "exactly_once",
    doc: "exactly_once (transactions and a state changelog) or at_least_once (commits after produce)",
  }),
  stateTopic: setting({
    env: "STATE_TOPIC",
    kind: orNull(text),
    default: null,
    defaultDoc: "<CONSUMER_GROUP>-state-changelog",
    doc: "Exactly-once state changelog topic",
  }),
  limitsTopic: setting({
    env: "LIMITS_TOPIC",
    kind: orNull(text),
    default: null,
    defaultDoc: "none",
    doc: "A compacted topic of per-sensor limits the engine follows (key: sensor id; value: bands by table)",
  }),
  workers: setting({
    flag: "workers",
    env: "WORKERS",
    arg: "N",
    kind: integer(1),
    default: navigator.hardwareConcurrency,
    defaultDoc: "the number of cores",
    doc:
      "Kafka mode: engine workers (threads) in this process, each a member of CONSUMER_GROUP; 1 runs in-thread",
  }),
  // 4096: a bound for a worker gone wrong, not a squeeze. On the quiet 2-core machine, catching up on 1M
  // events with 2 workers (scripts/bench/workers.ts --env WORKER_HEAP_MIB=N, one run each): exactly-once
  // 89,653 events/s at 16.8 µs CPU per event and 647 MiB peak RSS with 4096, 71,480 / 21.6 µs / 464 MiB with
  // 1024, 64,360 / 24.4 µs / 431 MiB with 512; at-least-once 126,987 / 13.4 µs / 695 MiB, 118,267 / 13.4 µs /
  // 507 MiB, 95,695 / 16.9 µs / 488 MiB. Below 2048 V8 grows a worker's heap by a smaller factor after each
  // collection (less RSS, more collections); 256 cost ~55% more CPU for no less memory.
  workerHeapMib: setting({
    env: "WORKER_HEAP_MIB",
    kind: integer(16),
    default: 4096,
    doc:
      "Heap limit of each engine worker (V8 old generation, MiB): one that reaches it is restarted alone; below 2048 its heap also grows less eagerly (less RSS, more GC: 512 bounds RSS catching up at ~430 MiB for ~25% less throughput)",
  }),
  // 100,000 per partition: the stats table's limit for the whole process; the engine's state of a sensor
  // with nothing but its newest time is ~190 bytes, with baselines, timers and episodes more.
  maxSensorsPerPartition: setting({
    env: "MAX_SENSORS_PER_PARTITION",
    kind: integer(100),
    default: 100_000,
    doc:
      "Sensors one input partition's engine keeps state for, and groups with an open window per window rule; at the limit, events of new sensors go to the DLQ (reason sensor_limit), of new groups too (reason group_limit)",
  }),
  workersTestCrash: setting({
    env: "WORKERS_TEST_CRASH",
    kind: orNull(text),
    default: null,
    defaultDoc: "unset",
    doc:
      "Tests only: K:N makes engine worker K throw an uncaught error once, after N events (K:N:heap: fill its heap)",
  }),
  sessionTimeoutMs: setting({
    env: "KAFKA_SESSION_TIMEOUT_MS",
    kind: integer(1000),
    default: 30_000,
    doc: "How soon a dead instance's partitions move to the others",
  }),
  maxPartitionFetchBytes: setting({
    env: "KAFKA_MAX_PARTITION_FETCH_BYTES",
    kind: integer(1024),
    default: 1024 * 1024,
    doc: "Most bytes a fetch returns per partition (at-least-once at 256 KiB: peak RSS -90 MiB, ~13% slower)",
  }),
  // 20 s: inside the 30 s a supervisor (Kubernetes' terminationGracePeriodSeconds, systemd's
  // TimeoutStopSec is 90) waits before SIGKILL, so the process says why it did not finish. With the
  // broker gone, kafkajs's retries kept a stop waiting ~1 minute.
  shutdownTimeoutMs: setting({
    env: "SHUTDOWN_TIMEOUT_MS",
    kind: integer(100),
    default: 20_000,
    doc:
      "After SIGTERM, how long in-flight work may take to finish; then the process exits 1 (what was not committed is read again)",
  }),
  maxFutureSkewMs: setting({
    env: "MAX_FUTURE_SKEW",
    kind: futureSkew,
    default: 5 * 60_000,
    defaultDoc: "5m",
    doc: "Events stamped further ahead of the clock are dead-lettered; off accepts any",
  }),
  dlqFile: setting({
    env: "DLQ_FILE",
    kind: text,
    default: "dlq.ndjson",
    doc: "Dead-letter file without Kafka",
  }),
  aggregatesFile: setting({
    env: "AGGREGATES_FILE",
    kind: text,
    default: "aggregates.ndjson",
    doc: "Window aggregates file without Kafka",
  }),
  silencesTopic: setting({
    env: "SILENCES_TOPIC",
    kind: text,
    default: "silences",
    doc:
      "Compacted topic of silences and the alerts they hold (`held/` keys), which every instance reads whole",
  }),
  silencesFile: setting({
    env: "SILENCES_FILE",
    kind: text,
    default: "silences.json",
    doc: "Silences file without Kafka; the alerts they hold are kept beside it (`silences.held.json`)",
  }),
  ...kafkaClient,
  logLevel,
} satisfies Settings;

/** `deno task simulate` (src/simulator/cli.ts). */
const simulate = {
  help,
  brokers: { ...brokers, doc: "Publish to Kafka; unset: NDJSON on stdout" },
  topic: { ...start.sensorTopic, flag: "topic", arg: "NAME", doc: "Topic to publish to" },
  sensorPartitions: start.sensorPartitions,
  rate: setting({
    flag: "rate",
    arg: "N",
    kind: number(0),
    default: 6,
    doc: "Events per second in total; 0 = as fast as possible",
  }),
  interval: setting({
    flag: "interval",
    arg: "MS",
    kind: orNull(number(1)),
    default: null,
    defaultDoc: "unset",
    doc: "Instead of --rate: one round over all sensors every MS milliseconds",
  }),
  count: setting({
    flag: "count",
    arg: "N",
    kind: orNull(number(0)),
    default: null,
    defaultDoc: "unset",
    doc: "Stop after N events",
  }),
  duration: setting({
    flag: "duration",
    arg: "S",
    kind: orNull(number(0)),
    default: null,
    defaultDoc: "run until Ctrl-C or --count",
    doc: "Stop after S seconds",
  }),
  sensors: { ...start.sensors, kind: number(0) },
  anomaly: start.anomaly,
  seed: { ...start.seed, kind: orNull(number(0)) },
  batch: setting({
    flag: "batch",
    arg: "N",
    kind: number(1),
    default: 500,
    doc: "Messages per produce request",
  }),
  ...kafkaClient,
  logLevel,
} satisfies Settings;

/** `deno task dlq:replay` (src/notifiers/replay.ts). */
const dlqReplay = {
  help,
  notifier: setting({
    flag: "notifier",
    arg: "NAME",
    kind: orNull(text),
    default: null,
    defaultDoc: "all",
    doc: "Only notifications that failed on this notifier",
  }),
  rule: setting({
    flag: "rule",
    arg: "ID",
    kind: orNull(text),
    default: null,
    defaultDoc: "all",
    doc: "Only alerts of this rule",
  }),
  since: setting({
    flag: "since",
    arg: "WHEN",
    kind: orNull(text),
    default: null,
    defaultDoc: "all",
    doc: "Only records that failed after WHEN (ISO time, or a duration like 2h = that long ago)",
  }),
  dryRun: setting({
    flag: "dry-run",
    kind: presence,
    default: false,
    doc: "List what would be re-sent, send nothing",
  }),
  brokers: { ...brokers, doc: "Read the DLQ topic; unset: the DLQ file" },
  rulesDir,
  pluginsDir,
  dlqTopic: start.dlqTopic,
  alertsTopic: start.alertsTopic,
  dlqFile: start.dlqFile,
  ...kafkaClient,
  logLevel,
} satisfies Settings;

/** `deno task silence`: silences through a running service's HTTP API. */
const silence = {
  help,
  url: setting({
    flag: "url",
    env: "SILENCES_API_URL",
    arg: "URL",
    kind: text,
    default: "http://127.0.0.1:8080",
    doc: "The service's HTTP API",
  }),
  apiToken: start.apiToken,
  duration: setting({
    flag: "for",
    arg: "DURATION",
    kind: {
      expected: 'a duration like "2h" or "30m"',
      schema: z.string().regex(DURATION_PATTERN).transform((d) => durationMs(d)),
    },
    default: 3600_000,
    defaultDoc: "1h",
    doc: "How long from now the silence lasts (add, extend)",
  }),
  createdBy: setting({
    flag: "by",
    arg: "NAME",
    kind: orNull(text),
    default: null,
    doc: "Who silences (add)",
  }),
  comment: setting({ flag: "comment", arg: "TEXT", kind: orNull(text), default: null, doc: "Why (add)" }),
} satisfies Settings;

/** A command: the settings it reads and the variables others read in its process. */
export interface Command {
  /** The deno.json tasks that run it. */
  readonly tasks: readonly string[];
  /** USAGE's first line. */
  readonly synopsis: string;
  readonly settings: Settings;
  /** Variables its libraries read; without them in `--allow-env` the library throws NotCapable. */
  readonly libraries: readonly (keyof typeof LIBRARY_VARIABLES)[];
  /** Whether notifiers.yaml's `${VAR}`s are read (NOTIFIER_VARIABLES). */
  readonly notifierVariables: boolean;
}

/**
 * Read by libraries, not by us: kafkajs 2.2.4 reads its own at load (src/retry/index.js reads
 * NODE_ENV), yaml 2.9.1 reads LOG_TOKENS and LOG_STREAM on every parse (parse/parser.js:178,
 * compose/composer.js:139) and throws NotCapable without them.
 */
export const LIBRARY_VARIABLES = {
  kafkajs: [
    "KAFKAJS_LOG_LEVEL",
    "KAFKAJS_NO_PARTITIONER_WARNING",
    "KAFKAJS_DEBUG_PROTOCOL_BUFFERS",
    "KAFKAJS_DEBUG_EXTENDED_PROTOCOL_BUFFERS",
    "NODE_ENV",
  ],
  yaml: ["LOG_STREAM", "LOG_TOKENS"],
} as const;

/**
 * The `${VAR}`s rules/notifiers.yaml's receivers use. A variable outside a task's `--allow-env` reads
 * as unset: add yours here and run `deno task config:docs`.
 */
export const NOTIFIER_VARIABLES: readonly string[] = [
  "NOTIFY_WEBHOOK_URL",
  "NOTIFY_WEBHOOK_SECRET",
  "SLACK_WEBHOOK_URL",
];

/** `deno task backtest` (src/backtest/cli.ts): a rule set over history, nothing published. */
const backtest = {
  help,
  brokers: { ...brokers, doc: "Read the events topic between --from and --to" },
  sensorTopic: start.sensorTopic,
  input: setting({
    flag: "input",
    arg: "FILE|-",
    kind: orNull(text),
    default: null,
    defaultDoc: "unset: the events topic",
    doc: "Backtest: NDJSON events from a file or stdin, as a replay reads them",
  }),
  from: setting({
    flag: "from",
    arg: "TIME|DURATION",
    kind: orNull(text),
    default: null,
    defaultDoc: "unset: the topic's beginning",
    doc: 'Backtest: first record time, ISO 8601 or a duration before now ("24h")',
  }),
  to: setting({
    flag: "to",
    arg: "TIME|DURATION",
    kind: orNull(text),
    default: null,
    defaultDoc: "unset: now",
    doc: "Backtest: end of the range (exclusive), ISO 8601 or a duration before now",
  }),
  rulesDir: { ...rulesDir, doc: "Backtest: the rule set to run (A of --against)" },
  rule: setting({
    flag: "rule",
    arg: "ID[,..]",
    kind: list(),
    default: [],
    defaultDoc: "every rule",
    doc: "Backtest: only these rules",
  }),
  against: setting({
    flag: "against",
    arg: "DIR",
    kind: orNull(text),
    default: null,
    defaultDoc: "unset",
    doc: "Backtest: a second rule set run over the same events, and the difference of their episodes",
  }),
  json: setting({
    flag: "json",
    kind: presence,
    default: false,
    doc: "Backtest: the report as JSON on stdout",
  }),
  html: setting({
    flag: "html",
    arg: "FILE",
    kind: orNull(text),
    default: null,
    defaultDoc: "unset",
    doc: "Backtest: also write the report as a self-contained HTML page",
  }),
  maxFutureSkewMs: start.maxFutureSkewMs,
  ...kafkaClient,
  logLevel,
} satisfies Settings;

export const commands = {
  start: {
    tasks: ["start"],
    synopsis: "deno task start [options]",
    settings: start,
    libraries: ["kafkajs", "yaml"],
    notifierVariables: true,
  },
  simulate: {
    tasks: ["simulate"],
    synopsis: "deno task simulate [options]",
    settings: simulate,
    libraries: ["kafkajs"],
    notifierVariables: false,
  },
  dlqReplay: {
    tasks: ["dlq:replay"],
    synopsis: "deno task dlq:replay [options]",
    settings: dlqReplay,
    libraries: ["kafkajs", "yaml"],
    notifierVariables: true,
  },
  rules: {
    tasks: ["rules:check", "rules:test", "rules:schema"],
    synopsis: "deno task rules:check [DIR] | rules:test [DIR] | rules:schema [DIR]",
    settings: { logLevel },
    libraries: ["yaml"],
    notifierVariables: false,
  },
  silence: {
    tasks: ["silence"],
    synopsis: "deno task silence list | add MATCHER... | extend ID | expire ID [options]",
    settings: silence,
    libraries: [],
    notifierVariables: false,
  },
  backtest: {
    tasks: ["backtest"],
    synopsis: "deno task backtest [--input FILE|- | --from TIME --to TIME] [options]",
    settings: backtest,
    libraries: ["kafkajs", "yaml"],
    notifierVariables: false,
  },
  bench: {
    tasks: ["bench"],
    synopsis: "deno task bench [options]",
    // scripts/bench/broker.ts: the broker to measure against, else a throwaway local one.
    settings: {
      brokers: setting({
        env: "KAFKA_BROKERS",
        kind: list(),
        default: [],
        defaultDoc: "unset: a throwaway local broker",
        doc: "The broker to measure against",
      }),
      // The bench prints through src/log.ts, whose process logger reads it.
      logLevel,
    },
    libraries: ["kafkajs"],
    notifierVariables: false,
  },
  "bench:dashboard": {
    // Its task allows every variable, as the bench's client ceiling does: playwright-core reads dozens
    // of its own at load. None of them is ours; this is the one the script reads.
    tasks: [],
    synopsis: "deno task bench:dashboard [options]",
    settings: {
      chromium: setting({
        env: "CHROMIUM_PATH",
        kind: text,
        default: "/usr/bin/chromium",
        doc: "The Chromium the dashboard is measured in",
      }),
    },
    libraries: [],
    notifierVariables: false,
  },
} as const satisfies Record<string, Command>;

/** Every variable `command`'s process may read: the `--allow-env` list of its tasks, sorted as declared. */
export function allowedEnv(command: Command): string[] {
  const names = Object.values(command.settings).flatMap((s: Setting) => s.env === undefined ? [] : [s.env]);
  if (command.notifierVariables) names.push(...NOTIFIER_VARIABLES);
  for (const lib of command.libraries) names.push(...LIBRARY_VARIABLES[lib]);
  return [...new Set(names)];
}
