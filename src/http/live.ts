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
}

export const liveFeedDefaults = {
  recentAlerts: 200,
  flushMs: 500,
  maxAlertsPerFlush: 50,
} satisfies LiveFeedOptions;

/** One message of the stream: `event` names the SSE event type, `data` is sent as JSON. */
export interface LiveMessage {
  event: "sensors" | "alerts" | "rules" | "stats" | "hello";
  data: unknown;
}

interface Client {
  controller: ReadableStreamDefaultController<Uint8Array>;
}

const encoder = new TextEncoder();

export class LiveFeed implements PipelineObserver {
  readonly #opts: Required<LiveFeedOptions>;
  readonly #recent: SensorAlert[] = [];
  readonly #clients = new Set<Client>();
  readonly #dirty = new Set<string>();
  #pendingAlerts: SensorAlert[] = [];
  #timer: ReturnType<typeof setInterval> | null = null;
  /** Alerts raised, by `rule\u0000priority\u0000state`; alerts are rare, so counted one by one. */
  readonly alertCounts = new Map<string, number>();
  /** Set by the metrics module to time batches without the pipeline knowing about it. */
  batchObserver: ((seconds: number) => void) | null = null;
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
    const key = `${alert.rule_id}\u0000${alert.priority}\u0000${alert.state}`;
    this.alertCounts.set(key, (this.alertCounts.get(key) ?? 0) + 1);
    this.#remember(alert);
  }

  onBatch(_records: number, seconds: number): void {
    this.batchObserver?.(seconds);
  }

  /** Records an alert that did not come from the pipeline (an acknowledgement) and streams it. */
  #remember(alert: SensorAlert): void {
    this.#recent.push(alert);
    if (this.#recent.length > this.#opts.recentAlerts) this.#recent.shift();
    if (this.#clients.size > 0) this.#pendingAlerts.push(alert);
  }

  acknowledged(alert: SensorAlert): void {
    this.#remember(alert);
    this.flush();
  }

  /** Newest last. */
  recentAlerts(): readonly SensorAlert[] {
    return this.#recent;
  }

  /** A new SSE stream; it starts with `initial` and then gets every flush until the client goes. */
  subscribe(initial: LiveMessage[]): ReadableStream<Uint8Array> {
    let client: Client;
    return new ReadableStream<Uint8Array>({
      start: (controller) => {
        client = { controller };
        this.#clients.add(client);
        for (const m of initial) controller.enqueue(encode(m));
        this.#timer ??= setInterval(() => this.flush(), this.#opts.flushMs);
      },
      cancel: () => this.#drop(client),
    }, { highWaterMark: 64 });
  }

  get clients(): number {
    return this.#clients.size;
  }

  /** Sends what accumulated since the last flush to every client. */
  flush(): void {
    if (this.#clients.size === 0) return;
    const messages = this.snapshot?.(this.#dirty) ?? [];
    this.#dirty.clear();
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
    const chunk = concat(messages.map(encode));
    for (const c of this.#clients) {
      // A client that stopped reading is skipped, not buffered for: the next snapshot catches it up.
      if ((c.controller.desiredSize ?? 0) <= 0) continue;
      try {
        c.controller.enqueue(chunk);
      } catch {
        this.#drop(c);
      }
    }
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

  #drop(c: Client): void {
    this.#clients.delete(c);
    if (this.#clients.size === 0 && this.#timer !== null) {
      clearInterval(this.#timer);
      this.#timer = null;
      this.#pendingAlerts = [];
      this.#dirty.clear();
    }
  }
}

function encode(m: LiveMessage): Uint8Array {
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
