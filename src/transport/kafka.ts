/**
 * Everything that knows kafkajs lives under `src/transport/` and `src/source/kafka.ts`, so the
 * transport can be measured against another client without touching the stages.
 *
 * @module
 */
import { Buffer } from "node:buffer";
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
import { Backoff } from "./backoff.ts";
import type { Output, OutRecord, ShrinkRecord } from "./output.ts";
import "./encoder.ts";
import "./request_queue.ts";
import { fixReadCommitted } from "./read_committed.ts";

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

/**
 * kafkajs's lines for what the service reports in one line of its own: a broker it cannot reach (two
 * lines per connection attempt, each with a stack), a consumer crash, and a producer fenced by
 * another with the same transactional id (three lines per fence).
 */
const REPORTED_BY_THE_SERVICE =
  /^(Connection error|Connection timeout|Failed to connect to seed broker|Crash: )|Producer attempted an operation with an old epoch|fences the current one/;

/**
 * kafkajs's lines at error level for the world, not a fault: a consumer that crashed on an error
 * kafkajs deems retriable (the broker gone) and restarts itself, as the followers' readers (limits,
 * state restore, silences) do. At error, a broker outage of 40 s paged with 16 such lines.
 */
const RETRIED_BY_KAFKAJS = /^Restarting the consumer in /;

/** kafkajs's message for UNKNOWN_TOPIC_OR_PARTITION. */
const UNKNOWN_TOPIC = /does not host this topic-partition/;

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

/** A consumer's offset was out of range (its records deleted) and kafkajs moved it to the default one. */
export interface OffsetReset {
  groupId: string;
  topic: string;
  partition: number;
}

const offsetResetListeners = new WeakMap<Kafka, Set<(reset: OffsetReset) => void>>();
const topicTroubleListeners = new WeakMap<Kafka, Set<() => void>>();

/**
 * Calls `listener` when a fetch or metadata request of `kafka` is answered that a topic-partition is
 * not there (UNKNOWN_TOPIC_OR_PARTITION): a topic is being deleted, perhaps created again. kafkajs
 * retries it on its own and only logs it. Returns the unsubscribe function.
 */
export function onTopicTrouble(kafka: Kafka, listener: () => void): () => void {
  const listeners = topicTroubleListeners.get(kafka);
  listeners?.add(listener);
  return () => listeners?.delete(listener);
}

/**
 * Calls `listener` when a consumer of `kafka` (made by `createKafka`) finds its offset out of range,
 * i.e. the records it was to read next were deleted (retention, DeleteRecords). kafkajs only logs it:
 * its log line is the one place that says so. Returns the unsubscribe function.
 */
export function onOffsetReset(kafka: Kafka, listener: (reset: OffsetReset) => void): () => void {
  const listeners = offsetResetListeners.get(kafka);
  listeners?.add(listener);
  return () => listeners?.delete(listener);
}

/** `retries`: how often kafkajs itself retries a request or a connection before it gives up (10: ~34 s). */
export function createKafka(settings: KafkaSettings, logger: Logger, { retries = 10 } = {}): Kafka {
  routeProcessWarnings(logger);
  // Its read_committed consumers (engine, notifier stage, changelog restore) showed aborted records.
  fixReadCommitted();
  const resets = new Set<(reset: OffsetReset) => void>();
  const troubles = new Set<() => void>();
  const config: KafkaConfig = {
    clientId: settings.clientId,
    brokers: settings.brokers,
    ssl: settings.ssl,
    socketFactory: noDelaySocketFactory,
    connectionTimeout: 3000,
    requestTimeout: 30000,
    retry: { initialRetryTime: 300, retries, maxRetryTime: 5000 },
    logLevel: logger.enabled("debug") ? logLevel.DEBUG : logLevel.WARN,
    logCreator: () => ({ namespace, level, log }) => {
      // A stack trace tells an operator nothing they can act on; the message says what failed.
      const { message, timestamp: _t, logger: _l, stack: _s, ...fields } = log as Record<string, unknown>;
      // Routine, so debug: the broker answers CONCURRENT_TRANSACTIONS while it writes the previous
      // commit's markers and kafkajs retries it (as an error it showed up for nearly every
      // transaction); and the transactional producer's retries are limited on purpose: when they run
      // out the transaction is aborted and a new producer (a new epoch) takes over.
      if (message === "Offset out of range, resetting to default offset") {
        const reset = {
          groupId: String(fields.groupId),
          topic: String(fields.topic),
          partition: Number(fields.partition),
        };
        for (const listener of resets) listener(reset);
      }
      if (
        UNKNOWN_TOPIC.test(String(fields.error ?? "")) && /^Response (Fetch|Metadata)/.test(String(message))
      ) {
        for (const listener of troubles) listener();
      }
      const text = `${String(message)} ${String(fields.error ?? "")}`;
      const routine = ROUTINE.test(text) || REPORTED_BY_THE_SERVICE.test(text);
      const kafkajsLevel = KAFKAJS_LEVEL[level] ?? "info";
      logger[
        routine
          ? "debug"
          : kafkajsLevel === "error" && RETRIED_BY_KAFKAJS.test(String(message))
          ? "warn"
          : kafkajsLevel
      ](
        `kafkajs ${namespace}: ${String(message)}`,
        fields,
      );
    },
  };
  if (settings.sasl !== null) config.sasl = settings.sasl as SASLOptions;
  const kafka = new Kafka(config);
  offsetResetListeners.set(kafka, resets);
  topicTroubleListeners.set(kafka, troubles);
  return kafka;
}

/** The broker answered, but a topic is not usable yet (no leader for a partition). */
export class TopicNotReadyError extends Error {
  /** Like kafkajs's own errors: worth trying again. */
  readonly retriable = true;
  constructor(message: string) {
    super(message);
    this.name = "TopicNotReadyError";
  }
}

/**
 * Creates the topics the service uses when they are missing (existing topics are left alone) and
 * returns once every partition of every one has a leader. A broker started a few seconds earlier
 * answers UNKNOWN_TOPIC_OR_PARTITION or LEADER_NOT_AVAILABLE for a while: those throw a retriable
 * error, for `untilKafka` to try again.
 */
export async function ensureTopics(admin: Admin, topics: ITopicConfig[]): Promise<void> {
  const existing = new Set(await admin.listTopics());
  const missing = topics.filter((t) => !existing.has(t.topic));
  if (missing.length > 0) await admin.createTopics({ topics: missing, waitForLeaders: true });
  const meta = await admin.fetchTopicMetadata({ topics: topics.map((t) => t.topic) });
  for (const t of meta.topics) {
    const p = t.partitions.find((p) => p.leader < 0 || p.partitionErrorCode !== 0);
    if (t.partitions.length === 0 || p !== undefined) {
      throw new TopicNotReadyError(`Topic "${t.name}" partition ${p?.partitionId ?? 0} has no leader yet`);
    }
  }
}

/**
 * Whether trying again may help: the innermost cause's verdict (kafkajs wraps errors in errors; the
 * topics a CreateTopics refused are an aggregate, retriable when each of its errors is).
 */
export function isRetriable(err: unknown): boolean {
  let e = err;
  for (let depth = 0; depth < 10 && e instanceof Error && e.cause instanceof Error; depth++) e = e.cause;
  if (!(e instanceof Error)) return false;
  const each = (e as { errors?: unknown }).errors;
  if (Array.isArray(each) && each.length > 0) return each.every(isRetriable);
  // kafkajs says never, but a cluster that is starting has fewer brokers registered than the
  // replication factor until the rest register (KRaft answers it to a CreateTopics that comes in
  // before the broker is unfenced): once, in CI, the service gave up at start on a broker starting.
  // Each attempt says it, so a replication factor the cluster can never reach is seen.
  if (errorTypes(e).includes("INVALID_REPLICATION_FACTOR")) return true;
  // What kafkajs throws, as never worth retrying, when no broker it could reach named the group's
  // coordinator: every broker gone, or one just back that has not loaded the group yet. A consumer
  // that met it in a broker outage logged "Consumer crashed", an error, where the broker was gone.
  // (Not seen in 3 outages of 20-26 s of a bare kafkajs consumer: NoBrokerAvailable, retries
  // exhausted on a refused connection, and a closed connection were, all retriable.)
  if (e.name === "KafkaJSGroupCoordinatorNotFound") return true;
  if ("retriable" in e) return (e as { retriable: unknown }).retriable === true;
  // Socket errors that reach us unwrapped.
  return /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|EPIPE|EAI_AGAIN/.test(e.message);
}

/** What went wrong talking to the broker, in a few words: "connection refused", not a stack. */
export function kafkaProblem(err: unknown): string {
  const messages: string[] = [];
  for (let e = err, depth = 0; e instanceof Error && depth < 10; e = e.cause, depth++) {
    messages.push(e.message);
    // An aggregate's own message ("Topic creation errors") says nothing: its errors do.
    const each = (e as { errors?: unknown }).errors;
    if (Array.isArray(each)) {
      const inner = [...new Set(each.map((x) => x instanceof Error ? kafkaProblem(x) : String(x)))];
      if (inner.length > 0) messages.push(inner.join("; "));
    }
  }
  const text = messages.join(" ");
  if (
    /INVALID_PRODUCER_EPOCH|PRODUCER_FENCED|old epoch|fences the current one/.test(text + errorTypes(err))
  ) {
    return "fenced by the partition's next owner";
  }
  if (/ECONNREFUSED/.test(text)) return "connection refused";
  if (/ENOTFOUND|EAI_AGAIN/.test(text)) return "host not found";
  if (/Connection timeout|ETIMEDOUT/.test(text)) return "connection timed out";
  if (/ECONNRESET|Connection closed|KafkaJSConnectionClosedError/.test(text)) return "connection closed";
  if (/EHOSTUNREACH|ENETUNREACH/.test(text)) return "host unreachable";
  return messages.at(-1) ?? String(err);
}

/** The kafkajs protocol error types (`CONCURRENT_TRANSACTIONS`, ...) of `err` and its causes. */
export function errorTypes(err: unknown): string[] {
  const types: string[] = [];
  for (let e = err, depth = 0; e instanceof Error && depth < 10; e = e.cause, depth++) {
    const type = (e as { type?: unknown }).type;
    if (typeof type === "string") types.push(type);
  }
  return types;
}

export interface UntilKafkaOptions {
  brokers: readonly string[];
  logger: Logger;
  /** The reason while waiting (`waiting for Kafka at …: connection refused`), null once done. */
  onWaiting?(reason: string | null): void;
  /** Gives up waiting (throws the signal's reason) when aborted, e.g. by a shutdown. */
  signal?: AbortSignal;
  backoff?: Backoff;
  /**
   * How long topics refused for their replication factor (INVALID_REPLICATION_FACTOR) are tried
   * again: long enough for a starting cluster's brokers to register, not for ever (2 minutes).
   */
  registeringMs?: number;
}

/** Whether the innermost cause (or one of its aggregate's errors) refused a replication factor. */
function replicationRefused(err: unknown): boolean {
  let e = err;
  for (let depth = 0; depth < 10 && e instanceof Error && e.cause instanceof Error; depth++) e = e.cause;
  if (!(e instanceof Error)) return false;
  const each = (e as { errors?: unknown }).errors;
  if (Array.isArray(each) && each.length > 0) return each.some(replicationRefused);
  return errorTypes(e).includes("INVALID_REPLICATION_FACTOR");
}

/**
 * Runs `attempt` until it succeeds, waiting with capped backoff after each retriable failure (the
 * broker is not there yet, or not ready): a service waits for its broker instead of exiting.
 * One warning per failed attempt; a non-retriable error (authentication, a bad setting) is thrown.
 */
export async function untilKafka<T>(attempt: () => Promise<T>, opts: UntilKafkaOptions): Promise<T> {
  const backoff = opts.backoff ?? new Backoff({ initialMs: 500, maxMs: 15_000 });
  const registeringMs = opts.registeringMs ?? 120_000;
  /** Since when topics have been refused for their replication factor, attempt after attempt. */
  let refusedSince: number | null = null;
  for (let n = 1;; n++) {
    opts.signal?.throwIfAborted();
    try {
      const result = await attempt();
      opts.onWaiting?.(null);
      return result;
    } catch (err) {
      if (!isRetriable(err)) throw err;
      opts.signal?.throwIfAborted();
      const problem = kafkaProblem(err);
      // A cluster that is starting registers its brokers within seconds; one that still refuses the
      // replication factor minutes later never will (a default.replication.factor above the brokers
      // it has): an operator must be told, not shown a service waiting for ever.
      if (!replicationRefused(err)) refusedSince = null;
      else if (refusedSince === null) refusedSince = Date.now();
      else if (Date.now() - refusedSince >= registeringMs) {
        throw new Error(
          `${problem}: topics refused for their replication factor for ${
            Math.round(registeringMs / 1000)
          } s, more brokers than the cluster has (its default.replication.factor)`,
          { cause: err },
        );
      }
      const delay = backoff.next();
      opts.onWaiting?.(`waiting for Kafka at ${opts.brokers.join(",")}: ${problem}`);
      opts.logger.warn("Waiting for Kafka", {
        brokers: opts.brokers.join(","),
        problem,
        attempt: n,
        retry_in_ms: delay,
      });
      await abortableSleep(delay, opts.signal);
    }
  }
}

function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

/** The framing a record takes in a batch besides its key and value (length varints, offsets, headers). */
const RECORD_OVERHEAD = 64;

/**
 * The bytes `r` takes in a produce request: its key and value in UTF-8, plus its framing. Counted in
 * bytes, not characters: a DLQ record of 65,824 characters (invalid UTF-8 replaced by U+FFFD, 3
 * bytes each) was 196,896 bytes, and 7 of them in one chunk counted as 512 KiB were 1,378,279.
 */
export function recordBytes(r: OutRecord): number {
  return (r.key === null ? 0 : Buffer.byteLength(r.key, "utf8")) +
    (r.value === null ? 0 : Buffer.byteLength(r.value, "utf8")) + RECORD_OVERHEAD;
}

/**
 * Records in requests of at most `maxBytes` of keys and values (UTF-8), so no partition's record
 * batch exceeds the broker's message size limit (1 MB by default) however many alerts a batch
 * raised. A record larger than `maxBytes` goes in a chunk of its own.
 *
 * A UTF-16 code unit is at most 3 bytes of UTF-8: a record that fits even so joins the chunk
 * unmeasured, and records are measured only once a chunk nears the limit (each at most once), the
 * chunks the same as measuring every record. Measuring every record took 53 µs for the 350 records
 * of a transaction per 1,000 events (scripts/bench/encoding_bench.ts), against 1.5 µs counting
 * characters; encoding that batch takes 1.3 ms.
 */
export function chunkRecords(records: readonly OutRecord[], maxBytes = 512 * 1024): OutRecord[][] {
  const chunks: OutRecord[][] = [];
  let chunk: OutRecord[] = [];
  /** Bytes of `chunk[0..measured)`, plus at most 3 per code unit of the records after them. */
  let size = 0;
  let measured = 0;
  let bound = 0;
  for (const r of records) {
    const most = 3 * ((r.key?.length ?? 0) + (r.value?.length ?? 0)) + RECORD_OVERHEAD;
    if (size + bound + most <= maxBytes) {
      chunk.push(r);
      bound += most;
      continue;
    }
    for (; measured < chunk.length; measured++) size += recordBytes(chunk[measured]!);
    bound = 0;
    const n = recordBytes(r);
    if (chunk.length > 0 && size + n > maxBytes) {
      chunks.push(chunk);
      chunk = [];
      size = 0;
    }
    chunk.push(r);
    size += n;
    measured = chunk.length;
  }
  if (chunk.length > 0) chunks.push(chunk);
  return chunks;
}

/** The broker refused a request for its size: the same request would be refused again. */
export function isTooLarge(err: unknown): boolean {
  return errorTypes(err).some((t) => t === "MESSAGE_TOO_LARGE" || t === "RECORD_LIST_TOO_LARGE");
}

/** A record that the broker refused on its own and that has nothing to stand for it. */
export class UnsendableRecordError extends Error {
  readonly record: OutRecord;
  constructor(record: OutRecord, problem: string) {
    super(
      `A record of ${recordBytes(record)} bytes for topic "${record.topic}" (key ${
        JSON.stringify(record.key?.slice(0, 64) ?? null)
      }) was refused on its own (${problem}) and nothing smaller stands for it`,
    );
    this.name = "UnsendableRecordError";
    this.record = record;
  }
}

/**
 * Reshapes chunks the broker refused for their size (MESSAGE_TOO_LARGE, RECORD_LIST_TOO_LARGE), so
 * the same request is never sent again unchanged: a chunk of several topics is split by topic, one
 * of several records in two, a
 * single record is replaced by what `shrink` makes of it (its failure in the DLQ, a DLQ record
 * without its original value). Bounded: each split leaves smaller chunks, and a record is replaced
 * at most `MAX_REPLACEMENTS` times along its chain (a record, its DLQ record, that one shrunk).
 */
export class ChunkResizer {
  static readonly MAX_REPLACEMENTS = 2;
  readonly #shrink: ShrinkRecord | undefined;
  /** Per replacement record: how many replacements it is from the record it stands for. */
  readonly #depth = new Map<OutRecord, number>();
  /** Per replacement record: the record it stands for (the caller's). */
  readonly #origin = new Map<OutRecord, OutRecord>();
  /** Records replaced, and chunks split, so far (the caller's log says so). */
  replaced = 0;
  split = 0;

  constructor(shrink?: ShrinkRecord) {
    this.#shrink = shrink;
  }

  /** The caller's record that `r` is or stands for. */
  origin(r: OutRecord): OutRecord {
    return this.#origin.get(r) ?? r;
  }

  /**
   * Reshapes `chunks[i]`, refused with `err`, in place. Throws UnsendableRecordError for a single
   * record that nothing smaller can stand for; the caller then drops it (`chunks[i]` is left empty).
   */
  resize(chunks: OutRecord[][], i: number, err: unknown): void {
    const chunk = chunks[i]!;
    const topics = new Set(chunk.map((r) => r.topic));
    if (topics.size > 1) {
      // One topic's batch is refused, the others' may be written: a chunk per topic sends those
      // again once, where halves would send them again at every step.
      chunks.splice(i, 1, ...[...topics].map((t) => chunk.filter((r) => r.topic === t)));
      this.split++;
      return;
    }
    if (chunk.length > 1) {
      const half = Math.ceil(chunk.length / 2);
      chunks.splice(i, 1, chunk.slice(0, half), chunk.slice(half));
      this.split++;
      return;
    }
    const record = chunk[0]!;
    const problem = `${errorTypes(err).at(-1) ?? "too large"}: ${recordBytes(record)} bytes`;
    const depth = this.#depth.get(record) ?? 0;
    const replacement = depth < ChunkResizer.MAX_REPLACEMENTS
      ? this.#shrink?.(record, problem) ?? null
      : null;
    if (replacement === null || replacement === record) {
      chunks[i] = [];
      throw new UnsendableRecordError(record, problem);
    }
    this.#depth.set(replacement, depth + 1);
    this.#origin.set(replacement, this.origin(record));
    chunks[i] = [replacement];
    this.replaced++;
  }
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
  /** What stands for a record the broker refuses on its own for its size (none: its sends fail). */
  shrink?: ShrinkRecord;
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
    // A failed connect is tried again by the next call (a broker that was down comes back).
    return this.#connected ??= this.#producer.connect().catch((err) => {
      this.#connected = null;
      throw err;
    });
  }

  send(records: OutRecord[]): Promise<void> {
    if (records.length === 0) return Promise.resolve();
    if (this.#closed) return Promise.reject(new Error("The Kafka output is closed"));
    return new Promise((resolve, reject) => {
      this.#queue.push({ records, resolve, reject });
      this.#kick();
    });
  }

  /**
   * A send called as the previous drain resolves its callers (they run before the drain's
   * `finally`) found it still running, and was left queued for ever: look again once it ended.
   */
  #kick(): void {
    this.#draining ??= this.#drain().finally(() => {
      this.#draining = null;
      if (this.#queue.length > 0) this.#kick();
    });
  }

  async #drain(): Promise<void> {
    while (this.#queue.length > 0) {
      const jobs = this.#queue.splice(0);
      const chunks = chunkRecords(jobs.length === 1 ? jobs[0]!.records : jobs.flatMap((j) => j.records));
      const resizer = new ChunkResizer(this.#opts.shrink);
      /** Jobs with a record nothing could be sent for, and why. */
      const failed = new Map<SendJob, Error>();
      let sent = 0;
      for (let attempt = 1;; attempt++) {
        try {
          await this.connect();
          while (sent < chunks.length) {
            const chunk = chunks[sent]!;
            if (chunk.length > 0) {
              try {
                await this.#producer.sendBatch({ acks: -1, topicMessages: topicMessages(chunk) });
                this.requests++;
              } catch (err) {
                // The same request would be refused for ever (it held back every later send, and the
                // engine's offsets with it): it is reshaped instead, not retried. The other partitions
                // of a refused request may have been written: sent again, they are duplicates, which
                // at-least-once allows.
                if (!isTooLarge(err)) throw err;
                this.#resize(resizer, chunks, sent, err, jobs, failed);
                continue;
              }
            }
            sent++;
          }
          for (const j of jobs) {
            const error = failed.get(j);
            if (error === undefined) j.resolve();
            else j.reject(error);
          }
          break;
        } catch (err) {
          const error = err instanceof Error ? err : new Error(String(err));
          if (!this.#opts.retryUntilClosed || this.#closed) {
            for (const j of [...jobs, ...this.#queue.splice(0)]) j.reject(failed.get(j) ?? error);
            break;
          }
          const delay = Math.min(10_000, 250 * 2 ** Math.min(attempt, 6));
          this.#opts.logger?.error("Produce failed, retrying", { attempt, retry_in_ms: delay, error });
          await new Promise((r) => setTimeout(r, delay));
        }
      }
    }
  }

  /** Reshapes a chunk refused for its size; a record nothing can stand for fails the sends that hold it. */
  #resize(
    resizer: ChunkResizer,
    chunks: OutRecord[][],
    i: number,
    err: unknown,
    jobs: readonly SendJob[],
    failed: Map<SendJob, Error>,
  ): void {
    const record = chunks[i]!.length === 1 ? chunks[i]![0]! : null;
    try {
      resizer.resize(chunks, i, err);
      if (record !== null) {
        this.#opts.logger?.warn("A record too large for the broker was replaced by a smaller one", {
          topic: record.topic,
          bytes: recordBytes(record),
          replacement_topic: chunks[i]![0]!.topic,
          error: kafkaProblem(err),
        });
      }
    } catch (unsendable) {
      if (!(unsendable instanceof UnsendableRecordError)) throw unsendable;
      this.#opts.logger?.error("A record too large for the broker was not sent", { error: unsendable });
      const origin = resizer.origin(unsendable.record);
      for (const j of jobs) if (j.records.includes(origin)) failed.set(j, unsendable);
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#draining;
    if (this.#connected !== null) await this.#producer.disconnect();
  }
}
