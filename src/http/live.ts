/**
 * The operator's live view of the pipeline: recent alerts, alert counts and the Server-Sent Events
 * stream of the dashboard. Events are never forwarded one by one: the feed marks sensors dirty and
 * sends their newest stats on a timer, so a 100k/s stream costs the browser a few messages a second.
 *
 * @module
 */
import type { SensorAlert } from "../contract/schemas.ts";
import type { DecodedEvent } from "../decode/decode.ts";
import type { PipelineObserver } from "../pipeline.ts";

export interface LiveFeedOptions {
  /** How many alerts `/api/alerts` keeps as "recent". */
  recentAlerts?: number;
  /** Throttle of the stream: sensor snapshots and queued alerts go out at most this often. */
  flushMs?: number;
  /** Alerts per flush and client; a storm beyond that is summarised as a count. */
  maxAlertsPerFlush?: number;
  /**
   * Sensors per flush (and per message of the initial picture); the others stay dirty for the next
   * flushes, oldest first, so a fleet that all changes at once is refreshed in turns.
   */
  maxSensorsPerFlush?: number;
}

export const liveFeedDefaults = {
  recentAlerts: 200,
  flushMs: 500,
  maxAlertsPerFlush: 50,
  // Measured with `deno task bench:dashboard --stream-only --rate 8000` (10,000 sensors, 3,200 events/s
  // on a busy 2-core machine): a flush carried up to 1,744 sensors, 533 KB, and one where every sensor
  // changed would carry all 10,000, 2.9 MB, one parse of it a long task in the browser. 1,000 is 317 KB.
  maxSensorsPerFlush: 1000,
} satisfies LiveFeedOptions;

/** One message of the stream: `event` names the SSE event type, `data` is sent as JSON. */
export interface LiveMessage {
  event: "sensors" | "alerts" | "rules" | "stats" | "hello";
  data: unknown;
}

interface Client {
  controller: ReadableStreamDefaultController<Uint8Array>;
  /** Chunks the reader has not taken yet, oldest first. */
  queue: Uint8Array[];
  queuedBytes: number;
  /** Queued bytes at which a flush skips the client: its initial picture plus `FLUSH_QUEUE_BYTES`. */
  limit: number;
  /** A read is pending: the next chunk goes straight to it. */
  waiting: boolean;
  /** When the reader last took a chunk (or the stream opened), `performance.now()`. */
  takenAt: number;
  /** The address the stream was asked from. */
  source: string;
}

/** A stream closed by `LiveFeed.evictCrowded`: the address it was asked from, its streams before. */
export interface Crowded {
  source: string;
  streams: number;
}

/** A stream closed by `LiveFeed.evictStalled`: how long its reader had taken nothing, what it left. */
export interface Evicted {
  stalledMs: number;
  queuedBytes: number;
}

const encoder = new TextEncoder();

/**
 * Bytes of flushes queued for a client beyond its initial picture; a flush finding the queue that
 * full skips the client. Three full flushes (317 KB each), or seconds of ordinary ones.
 */
export const FLUSH_QUEUE_BYTES = 1024 * 1024;

export class LiveFeed implements PipelineObserver {
  readonly #opts: Required<LiveFeedOptions>;
  readonly #recent: SensorAlert[] = [];
  readonly #clients = new Set<Client>();
  /** Streams per address they were asked from. */
  readonly #perSource = new Map<string, number>();
  readonly #dirty = new Set<string>();
  /** Sensors with a new alert since the last flush: their change of state goes out first. */
  readonly #urgent = new Set<string>();
  #pendingAlerts: SensorAlert[] = [];
  #timer: ReturnType<typeof setInterval> | null = null;
  /** Alerts raised, by `rule\u0000priority\u0000state`; alerts are rare, so counted one by one. */
  readonly alertCounts = new Map<string, number>();
  /** Set by the metrics module to time batches without the pipeline knowing about it. */
  batchObserver: ((seconds: number) => void) | null = null;
  /** Moves whenever `recentAlerts` changes (an alert, an acknowledgement): `/api/alerts` is keyed on it. */
  #alertsVersion = 0;
  /** Builds the periodic messages (sensor snapshots, rules, rates); set by the server. */
  snapshot: ((dirty: ReadonlySet<string>) => LiveMessage[]) | null = null;

  constructor(options: LiveFeedOptions = {}) {
    this.#opts = { ...liveFeedDefaults, ...options };
  }

  onEvent(e: DecodedEvent): void {
    if (this.#clients.size > 0) this.#dirty.add(e.event.sensor_id);
  }

  onSensors(sensorIds: readonly string[]): void {
    if (this.#clients.size > 0) { for (const id of sensorIds) this.#dirty.add(id); }
  }

  wantsSensors(): boolean {
    return this.#clients.size > 0;
  }

  onAlert(alert: SensorAlert): void {
    if (this.#clients.size > 0) this.#urgent.add(alert.sensor_id);
    const key = `${alert.rule_id}\u0000${alert.priority}\u0000${alert.state}`;
    this.alertCounts.set(key, (this.alertCounts.get(key) ?? 0) + 1);
    this.#remember(alert);
  }

  onBatch(_records: number, seconds: number): void {
    this.batchObserver?.(seconds);
  }

  /** Records an alert that did not come from the pipeline (an acknowledgement) and streams it. */
  #remember(alert: SensorAlert): void {
    this.#alertsVersion++;
    this.#recent.push(alert);
    if (this.#recent.length > this.#opts.recentAlerts) this.#recent.shift();
    if (this.#clients.size > 0) this.#pendingAlerts.push(alert);
  }

  acknowledged(alert: SensorAlert): void {
    // The engine answers an acknowledgement asked again with the alert as first acknowledged: not news.
    // Kept each time, 200 such requests replaced every recent alert of `/api/alerts` with copies of
    // one, each also flushing the stream out of its 500 ms turn.
    if (this.#recent.some((a) => a.alert_id === alert.alert_id && sameAck(a, alert))) return;
    this.#remember(alert);
    this.flush();
  }

  /** Newest last. */
  recentAlerts(): readonly SensorAlert[] {
    return this.#recent;
  }

  /** Moves whenever `recentAlerts` changes. */
  get alertsVersion(): number {
    return this.#alertsVersion;
  }

  /**
   * A new SSE stream; it starts with `initial` and then gets every flush until the client goes.
   *
   * The queue is counted in bytes: room for the initial picture plus `FLUSH_QUEUE_BYTES` of flushes.
   * Counted in chunks (64), a client that stopped reading held 64 flushes, 14 MiB of 256 KB ones in
   * tests/http/live_test.ts (a full flush of 1,000 sensors is 317 KB: 20 MiB). `initial` is encoded
   * here, not in `start`, so the stream keeps the bytes queued until read, not the views behind them.
   *
   * The queue is the feed's own and a chunk is handed over only when the reader asks for one (`pull`,
   * with no queue in the stream itself), so the feed knows when each client last took a chunk: the
   * server reads the next one only once the socket took the last, so a client that does not read is
   * seen here as a reader that stopped asking (see `evictStalled`).
   */
  subscribe(initial: readonly (LiveMessage | Uint8Array)[], source = ""): ReadableStream<Uint8Array> {
    // Bytes are messages encoded already (`encodeMessage`), and may be shared by several streams.
    const queue = initial.map((m) => m instanceof Uint8Array ? m : encodeMessage(m));
    const initialBytes = queue.reduce((n, c) => n + c.byteLength, 0);
    const client: Client = {
      controller: null as unknown as ReadableStreamDefaultController<Uint8Array>,
      queue,
      queuedBytes: initialBytes,
      limit: initialBytes + FLUSH_QUEUE_BYTES,
      waiting: false,
      takenAt: performance.now(),
      source,
    };
    return new ReadableStream<Uint8Array>({
      start: (controller) => {
        client.controller = controller;
        this.#clients.add(client);
        this.#perSource.set(source, (this.#perSource.get(source) ?? 0) + 1);
        this.#timer ??= setInterval(() => this.flush(), this.#opts.flushMs);
      },
      pull: () => {
        client.takenAt = performance.now();
        const chunk = client.queue.shift();
        if (chunk === undefined) {
          client.waiting = true;
          return;
        }
        client.queuedBytes -= chunk.byteLength;
        client.controller.enqueue(chunk);
      },
      cancel: () => this.#drop(client),
    }, { highWaterMark: 0 });
  }

  /**
   * Closes the stream whose reader has taken nothing for longest, if that is at least `minStalledMs`
   * (a pending read counts as taking: that client is up to date), to make room for a new one.
   * Erroring the stream (not closing it: a close waits for the queue to be read) tells the server to
   * drop the connection at once. Null when every stream reads.
   */
  evictStalled(minStalledMs: number): Evicted | null {
    const now = performance.now();
    let worst: Client | null = null;
    for (const c of this.#clients) {
      if (c.waiting) continue;
      if (worst === null || c.takenAt < worst.takenAt) worst = c;
    }
    if (worst === null || now - worst.takenAt < minStalledMs) return null;
    const evicted = { stalledMs: Math.round(now - worst.takenAt), queuedBytes: worst.queuedBytes };
    try {
      worst.controller.error(new Error("The client stopped reading its live stream"));
    } catch { /* already closed */ }
    this.#drop(worst);
    return evicted;
  }

  /**
   * Closes a stream of the address that holds the most, to make room for one asked from `source`,
   * if that address holds at least two more than `source` does: streams that read keep their slots,
   * but one address does not keep every slot from the others (a client that opened them all and reads
   * them kept every dashboard out with 503). Of that address's streams, the one whose reader has
   * taken nothing for longest goes. Null when no address holds more than its share.
   */
  evictCrowded(source: string): Crowded | null {
    let top: string | null = null;
    let most = 0;
    for (const [s, n] of this.#perSource) {
      if (n > most) {
        top = s;
        most = n;
      }
    }
    if (top === null || most < (this.#perSource.get(source) ?? 0) + 2) return null;
    let oldest: Client | null = null;
    for (const c of this.#clients) {
      if (c.source !== top) continue;
      if (
        oldest === null || (oldest.waiting && !c.waiting) ||
        (oldest.waiting === c.waiting && c.takenAt < oldest.takenAt)
      ) {
        oldest = c;
      }
    }
    if (oldest === null) return null;
    try {
      oldest.controller.error(new Error("An address with more live streams than any other gave one up"));
    } catch { /* already closed */ }
    this.#drop(oldest);
    return { source: top, streams: most };
  }

  get clients(): number {
    return this.#clients.size;
  }

  /** Sends what accumulated since the last flush to every client. */
  flush(): void {
    if (this.#clients.size === 0) return;
    const sensors = this.#takeDirty();
    const messages = this.snapshot?.(sensors) ?? [];
    if (this.#pendingAlerts.length > 0) {
      const all = this.#pendingAlerts;
      this.#pendingAlerts = [];
      const max = this.#opts.maxAlertsPerFlush;
      messages.push({
        event: "alerts",
        data: { alerts: all.slice(-max), dropped: Math.max(0, all.length - max) },
      });
    }
    if (messages.length === 0) return;
    const chunk = concat(messages.map(encodeMessage));
    for (const c of this.#clients) {
      // A client that stopped reading is skipped, not buffered for: the next snapshot catches it up.
      if (c.queuedBytes >= c.limit) continue;
      this.#send(c, chunk);
    }
  }

  /** At most `maxSensorsPerFlush` dirty sensors, those with a new alert first, then the oldest. */
  #takeDirty(): Set<string> {
    const max = this.#opts.maxSensorsPerFlush;
    if (this.#urgent.size === 0 && this.#dirty.size <= max) {
      const all = new Set(this.#dirty);
      this.#dirty.clear();
      return all;
    }
    const out = new Set<string>();
    for (const set of [this.#urgent, this.#dirty]) {
      for (const id of set) {
        if (out.size >= max) break;
        out.add(id);
      }
    }
    for (const id of out) {
      this.#urgent.delete(id);
      this.#dirty.delete(id);
    }
    return out;
  }

  get maxSensorsPerFlush(): number {
    return this.#opts.maxSensorsPerFlush;
  }

  /** Ends every stream, so a server shutdown does not wait for browsers to hang up. */
  close(): void {
    for (const c of [...this.#clients]) {
      try {
        c.controller.close();
      } catch { /* already closed */ }
      this.#drop(c);
    }
  }

  /** To the pending read if there is one, else to the client's queue. */
  #send(c: Client, chunk: Uint8Array): void {
    if (!c.waiting) {
      c.queue.push(chunk);
      c.queuedBytes += chunk.byteLength;
      return;
    }
    c.waiting = false;
    c.takenAt = performance.now();
    try {
      c.controller.enqueue(chunk);
    } catch {
      this.#drop(c);
    }
  }

  #drop(c: Client): void {
    c.queue = [];
    c.queuedBytes = 0;
    if (!this.#clients.delete(c)) return;
    const left = (this.#perSource.get(c.source) ?? 1) - 1;
    if (left === 0) this.#perSource.delete(c.source);
    else this.#perSource.set(c.source, left);
    if (this.#clients.size === 0 && this.#timer !== null) {
      clearInterval(this.#timer);
      this.#timer = null;
      this.#pendingAlerts = [];
      this.#dirty.clear();
      this.#urgent.clear();
    }
  }
}

/**
 * A fleet's sensor views as `sensors` messages of at most `max` each, so none is a long parse; at
 * least one, so the initial picture always has its `sensors` message (empty before the first event).
 */
export function sensorMessages(views: readonly unknown[], max: number): LiveMessage[] {
  if (views.length === 0) return [{ event: "sensors", data: [] }];
  const out: LiveMessage[] = [];
  for (let i = 0; i < views.length; i += max) out.push({ event: "sensors", data: views.slice(i, i + max) });
  return out;
}

/** Whether two versions of an alert are the same acknowledgement (the engine's copy, or a worker's). */
function sameAck(a: SensorAlert, b: SensorAlert): boolean {
  return a.acknowledged && b.acknowledged && a.acknowledged_at === b.acknowledged_at && a.state === b.state;
}

/** A message as the stream sends it. */
export function encodeMessage(m: LiveMessage): Uint8Array {
  return encoder.encode(`event: ${m.event}\ndata: ${JSON.stringify(m.data)}\n\n`);
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}
