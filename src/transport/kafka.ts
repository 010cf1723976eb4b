/**
 * Everything that knows kafkajs lives under `src/transport/` and `src/source/kafka.ts`, so the
 * transport can be measured against another client without touching the stages.
 *
 * @module
 */
import net from "node:net";
import process from "node:process";
import tls from "node:tls";
import {
  type Admin,
  type ISocketFactory,
  type ITopicConfig,
  Kafka,
  type KafkaConfig,
  logLevel,
  type Message,
  Partitioners,
  type Producer,
  type SASLOptions,
  type TopicMessages,
} from "kafkajs";
import { readSettings } from "../config/setting.ts";
import { kafkaClient } from "../config/settings.ts";
import { env as processEnv } from "../env.ts";
import { type Logger, registerSecret } from "../log.ts";
import type { Output, OutRecord } from "./output.ts";

export interface KafkaSettings {
  brokers: string[];
  clientId: string;
  ssl: boolean;
  sasl: { mechanism: "plain" | "scram-sha-256" | "scram-sha-512"; username: string; password: string } | null;
}

/** Reads the `KAFKA_*` client variables (declared in src/config/settings.ts); secrets only come from the environment. */
export function kafkaSettingsFromEnv(
  brokers: string[],
  env: Readonly<Record<string, string | undefined>> = processEnv,
): KafkaSettings {
  const v = readSettings(kafkaClient, [], env);
  let sasl: KafkaSettings["sasl"] = null;
  if (v.saslMechanism !== null) {
    registerSecret(v.saslPassword);
    sasl = { mechanism: v.saslMechanism, username: v.saslUsername, password: v.saslPassword };
  }
  return { brokers, clientId: v.clientId, ssl: v.ssl, sasl };
}

const KAFKAJS_LEVEL: Record<number, "error" | "warn" | "info" | "debug"> = {
  [logLevel.ERROR]: "error",
  [logLevel.WARN]: "warn",
  [logLevel.INFO]: "info",
  [logLevel.DEBUG]: "debug",
};

/**
 * kafkajs's own socket factory, plus TCP_NODELAY (as the Java client sets it). Neither kafkajs nor
 * Deno's `node:net` sets it, and a request written while another is unacknowledged then waits for
 * the broker's delayed ACK. A transaction has several requests in flight: exactly-once's p99
 * event → alert at 5,000 events/s was 46-61 ms without it and 36 ms with it, side by side.
 */
export const noDelaySocketFactory: ISocketFactory = ({ host, port, ssl, onConnect }) => {
  const socket = ssl
    ? tls.connect({ host, port, ...(net.isIP(host) ? {} : { servername: host }), ...ssl }, onConnect)
    : net.connect({ host, port }, onConnect);
  socket.setKeepAlive(true, 60_000);
  socket.setNoDelay(true);
  return socket;
};

const ROUTINE =
  /another concurrent operation on the same transaction|Limiting retries for the idempotent producer/;

let warningsRouted = false;

/**
 * Process warnings go to the service's log instead of plain stderr lines, except the
 * TimeoutNegativeWarning kafkajs causes in every process: its request queue arms a timer for
 * `throttledUntil - Date.now()` when it is not throttled, a negative delay that runs as 1 ms.
 */
function routeProcessWarnings(logger: Logger): void {
  if (warningsRouted) return;
  warningsRouted = true;
  process.removeAllListeners("warning");
  process.on("warning", (w: Error) => {
    if (w.name !== "TimeoutNegativeWarning") logger.warn(w.message, { warning: w.name });
  });
}

export function createKafka(settings: KafkaSettings, logger: Logger): Kafka {
  routeProcessWarnings(logger);
  const config: KafkaConfig = {
    clientId: settings.clientId,
    brokers: settings.brokers,
    ssl: settings.ssl,
    socketFactory: noDelaySocketFactory,
    connectionTimeout: 3000,
    requestTimeout: 30000,
    retry: { initialRetryTime: 300, retries: 10, maxRetryTime: 5000 },
    logLevel: logger.enabled("debug") ? logLevel.DEBUG : logLevel.WARN,
    logCreator: () => ({ namespace, level, log }) => {
      const { message, timestamp: _t, logger: _l, ...fields } = log as Record<string, unknown>;
      // Routine, so debug: the broker answers CONCURRENT_TRANSACTIONS while it writes the previous
      // commit's markers and kafkajs retries it (as an error it showed up for nearly every
      // transaction); and the transactional producer's retries are limited on purpose: when they run
      // out the transaction is aborted and a new producer (a new epoch) takes over.
      const routine = ROUTINE.test(`${String(message)} ${String(fields.error ?? "")}`);
      logger[routine ? "debug" : KAFKAJS_LEVEL[level] ?? "info"](
        `kafkajs ${namespace}: ${String(message)}`,
        fields,
      );
    },
  };
  if (settings.sasl !== null) config.sasl = settings.sasl as SASLOptions;
  return new Kafka(config);
}

/** Creates the topics the service uses when they are missing; existing topics are left alone. */
export async function ensureTopics(admin: Admin, topics: ITopicConfig[]): Promise<void> {
  const existing = new Set(await admin.listTopics());
  const missing = topics.filter((t) => !existing.has(t.topic));
  if (missing.length > 0) await admin.createTopics({ topics: missing, waitForLeaders: true });
}

/**
 * Records in requests of at most `maxBytes` of keys and values, so no partition's record batch
 * exceeds the broker's message size limit (1 MB by default) however many alerts a batch raised.
 */
export function chunkRecords(records: readonly OutRecord[], maxBytes = 512 * 1024): OutRecord[][] {
  const chunks: OutRecord[][] = [];
  let chunk: OutRecord[] = [];
  let size = 0;
  for (const r of records) {
    const n = (r.key?.length ?? 0) + (r.value?.length ?? 0) + 64;
    if (chunk.length > 0 && size + n > maxBytes) {
      chunks.push(chunk);
      chunk = [];
      size = 0;
    }
    chunk.push(r);
    size += n;
  }
  if (chunk.length > 0) chunks.push(chunk);
  return chunks;
}

/** Records grouped by topic, as kafkajs sends them. */
export function topicMessages(records: readonly OutRecord[]): TopicMessages[] {
  const byTopic = new Map<string, Message[]>();
  for (const r of records) {
    let list = byTopic.get(r.topic);
    if (list === undefined) byTopic.set(r.topic, list = []);
    list.push(
      r.partition === undefined
        ? { key: r.key, value: r.value }
        : { key: r.key, value: r.value, partition: r.partition },
    );
  }
  return [...byTopic].map(([topic, messages]) => ({ topic, messages }));
}

interface SendJob {
  records: OutRecord[];
  resolve(): void;
  reject(err: Error): void;
}

export interface KafkaOutputOptions {
  /**
   * Retry a failed produce (after kafkajs's own retries) with backoff until it succeeds or the output
   * is closed, holding back every later send: records keep the order of the `send` calls. Without it
   * a failed produce rejects its callers and everything queued behind it. Default false.
   */
  retryUntilClosed?: boolean;
  logger?: Logger;
}

/**
 * An Output whose `send` resolves once all in-sync replicas acknowledged every record. One produce
 * is in flight at a time; the sends that arrive meanwhile go out together in the next one (a group
 * produce), in the order they were called.
 */
export class KafkaOutput implements Output {
  readonly #producer: Producer;
  readonly #opts: KafkaOutputOptions;
  #connected: Promise<void> | null = null;
  #queue: SendJob[] = [];
  #draining: Promise<void> | null = null;
  #closed = false;
  /** Produce requests made (a group produce counts once). */
  requests = 0;

  constructor(kafka: Kafka, opts: KafkaOutputOptions = {}) {
    this.#opts = opts;
    // The default partitioner hashes keys like the Java client (murmur2), so a sensor's events and
    // alerts land on the same partition whoever produced them.
    this.#producer = kafka.producer({
      allowAutoTopicCreation: false,
      maxInFlightRequests: 1,
      createPartitioner: Partitioners.DefaultPartitioner,
    });
  }

  connect(): Promise<void> {
    return this.#connected ??= this.#producer.connect();
  }

  send(records: OutRecord[]): Promise<void> {
    if (records.length === 0) return Promise.resolve();
    if (this.#closed) return Promise.reject(new Error("The Kafka output is closed"));
    return new Promise((resolve, reject) => {
      this.#queue.push({ records, resolve, reject });
      this.#draining ??= this.#drain().finally(() => this.#draining = null);
    });
  }

  async #drain(): Promise<void> {
    while (this.#queue.length > 0) {
      const jobs = this.#queue.splice(0);
      const chunks = chunkRecords(jobs.length === 1 ? jobs[0]!.records : jobs.flatMap((j) => j.records));
      let sent = 0;
      for (let attempt = 1;; attempt++) {
        try {
          await this.connect();
          for (; sent < chunks.length; sent++) {
            await this.#producer.sendBatch({ acks: -1, topicMessages: topicMessages(chunks[sent]!) });
            this.requests++;
          }
          for (const j of jobs) j.resolve();
          break;
        } catch (err) {
          const error = err instanceof Error ? err : new Error(String(err));
          if (!this.#opts.retryUntilClosed || this.#closed) {
            for (const j of [...jobs, ...this.#queue.splice(0)]) j.reject(error);
            break;
          }
          const delay = Math.min(10_000, 250 * 2 ** Math.min(attempt, 6));
          this.#opts.logger?.error("Produce failed, retrying", { attempt, retry_in_ms: delay, error });
          await new Promise((r) => setTimeout(r, delay));
        }
      }
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#draining;
    if (this.#connected !== null) await this.#producer.disconnect();
  }
}
