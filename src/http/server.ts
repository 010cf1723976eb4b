/**
 * The operator's HTTP server: health checks, Prometheus metrics, the JSON API, the live stream and
 * the dashboard. It starts before the service so `/healthz` and `/readyz` answer during startup;
 * `attach` hands it the running service.
 *
 * @module
 */
import { httpDefaults } from "../config.ts";
import { type Logger, registerSecret } from "../log.ts";
import type { OpenEpisode, SourceView } from "../engine/types.ts";
import type { SensorAlert } from "../contract/schemas.ts";
import type { Service } from "../service.ts";
import {
  acknowledge,
  type AlertFilter,
  alertsView,
  parseAlertFilter,
  rulesView,
  sensorsView,
} from "./api.ts";
import { checkWrite } from "./auth.ts";
import { hostChecker } from "./host.ts";
import { ConsumerLag, type PartitionLag } from "./lag.ts";
import { encodeMessage, type LiveFeed, type LiveMessage, sensorMessages } from "./live.ts";
import { createMetrics } from "./metrics.ts";
import { type RequestInfo, serve, type Served } from "./serve.ts";
import { silencesRoute } from "./silences_api.ts";
import type { WhatIfHistory } from "../backtest/whatif.ts";
import { whatIfRoute } from "./whatif.ts";

export interface HttpServerOptions {
  host: string;
  port: number;
  /** Bearer token required by write endpoints; null serves them to loopback clients without one. */
  token: string | null;
  logger: Logger;
  live: LiveFeed;
  alertsTopic: string;
  mode: "kafka" | "replay" | "embedded";
  /** Host names beyond loopback and `host` that requests may name (a reverse proxy's). */
  allowedHosts?: readonly string[];
  /**
   * Live streams at once. One more takes the slot of the stream whose client has taken nothing for
   * longest, if that is at least `streamStallMs`; else it gets 503.
   */
  maxStreams?: number;
  /** How long a stream's client must have taken nothing for its slot to go to a new stream. */
  streamStallMs?: number;
  /** Open connections at once; one more takes the slot of the connection idle longest (see `serve`). */
  maxConnections?: number;
  /** Headers and body of a request must arrive within this; an answer must drain as fast. */
  requestTimeoutMs?: number;
  /** Bytes of answers waiting for slow clients past which new answers get 503 (see `serve`). */
  maxPendingBytes?: number;
  /** Why the service is not attached yet (e.g. it waits for its broker). */
  startup?: { readonly reason: string | null };
  /** The recent events `POST /api/whatif` runs a rule over: the events topic, or the process's memory. */
  history?: WhatIfHistory;
}

/** The limits when not configured; an acknowledgement's body is `{"by": "..."}`. */
export const httpServerDefaults = {
  ...httpDefaults,
  allowedHosts: [] as readonly string[],
  maxBodyBytes: 64 * 1024,
  // Two `/api/sensors` of a fleet at the stats limit (100,000 sensors: 30.3 MB) and change.
  maxPendingBytes: 64 * 1024 * 1024,
  // Ten flushes of the stream (500 ms each): a dashboard that reads takes each one within
  // milliseconds, and the largest message (the first picture's 1,000 sensors, 317 KB) in under 4 s
  // even at 100 KB/s. Under HTTP_REQUEST_TIMEOUT_MS (10 s), after which serve() drops a connection
  // that took no 64 KiB slice anyway: a slot held by a client that never reads is given to the
  // dashboard waiting for it rather than held for that long, again and again as it reconnects.
  streamStallMs: 5000,
};

export interface HttpServer {
  /** The bound address, e.g. http://127.0.0.1:8080 (the real port when 0 was asked for). */
  readonly url: string;
  attach(service: Service): void;
  close(): Promise<void>;
}

/** The routes that read the engine's state, and whether their answer shows sensors. */
const READ_ROUTES = new Map<string, "sensors" | "counters">([
  ["/api/sensors", "sensors"],
  ["/api/stream", "sensors"],
  ["/api/alerts", "counters"],
  ["/api/rules", "counters"],
]);

/** How long one `/api/sensors` answer is shared by the requests that follow (as the stream's flush). */
const SENSORS_SHARE_MS = 500;

const STATIC = ["dashboard.html", "dashboard.js", "dom.js", "fleet.js", "silences.js", "whatif.js"] as const;

export async function startHttpServer(opts: HttpServerOptions): Promise<HttpServer> {
  const { logger, live } = opts;
  const limits = { ...httpServerDefaults, ...opts };
  registerSecret(opts.token ?? undefined);
  const files = new Map<string, string>();
  for (const name of STATIC) {
    const url = new URL(name, import.meta.url);
    try {
      files.set(name, await Deno.readTextFile(url));
    } catch (err) {
      throw new Error(`Cannot read the dashboard file "${url.pathname}"`, { cause: err });
    }
  }
  const hostAllowed = hostChecker(opts.host, limits.allowedHosts);
  const answerHeaders = securityHeaders(await styleHashes(files.get("dashboard.html") ?? ""));

  let service: Service | null = null;
  let lag: ConsumerLag | null = null;
  let lastLag: PartitionLag[] = [];
  const metrics = createMetrics({ service: () => service, live, lag: () => lag, logger });
  const startedAt = Date.now();
  let rate = { at: Date.now(), events: 0, perSecond: 0 };
  let rulesSeen = "";

  const statsMessage = (): LiveMessage => {
    const p = service?.pipeline;
    const now = Date.now();
    const events = p?.counters.events ?? 0;
    if (now - rate.at >= 900) {
      rate = { at: now, events, perSecond: Math.round((events - rate.events) * 1000 / (now - rate.at)) };
    }
    if (lag !== null) lag.read().then((l) => lastLag = l, () => {});
    return {
      event: "stats",
      data: {
        mode: opts.mode,
        ready: ready().ready,
        events: events,
        events_per_second: rate.perSecond,
        accepted: p?.counters.accepted ?? 0,
        duplicates: p?.counters.duplicates ?? 0,
        dead_letters: p?.counters.dead_letters ?? {},
        alerts: p?.counters.alerts ?? 0,
        open_alerts: p?.tracker.active().filter((e) => e.alert !== null).length ?? 0,
        lag: lastLag,
        lag_total: lastLag.reduce((n, l) => n + l.lag, 0),
      },
    };
  };
  const rulesFingerprint = (s: Service) =>
    `${s.registry.lastGoodReload?.getTime()}:${s.registry.reloadErrors}:${s.registry.ruleSet.rules.length}:` +
    `${s.notifiers.status().reload_errors}:${s.notifiers.status().loaded_at}`;
  live.snapshot = (dirty) => {
    if (service === null) return [];
    const out: LiveMessage[] = [statsMessage()];
    if (dirty.size > 0) out.push({ event: "sensors", data: sensorsView(service, dirty) });
    // Reloads are read from the registry's state, whoever triggered them (watcher, API, signal).
    const fp = rulesFingerprint(service);
    if (fp !== rulesSeen) {
      rulesSeen = fp;
      out.push({ event: "rules", data: rulesView(service.registry, service.notifiers) });
    }
    return out;
  };

  function ready(): { ready: boolean; reason?: string; checks: Record<string, unknown> } {
    if (service === null) {
      return { ready: false, reason: opts.startup?.reason ?? "starting", checks: { service: "starting" } };
    }
    const rulesLoaded = service.registry.lastGoodReload !== null || service.registry.status().length > 0;
    const groups = (service.kafka?.sources ?? []).map((s) => ({ group: s.groupId, joined: s.joined }));
    const isReady = rulesLoaded && service.ready();
    const reason = isReady
      ? null
      : !rulesLoaded
      ? "no rules loaded"
      : service.kafka?.sources.find((s) => s.problem !== null)?.problem ??
        heldReason(service.kafka?.sources ?? []) ?? "joining the Kafka consumer groups";
    return {
      ready: isReady,
      ...(reason !== null ? { reason } : {}),
      checks: {
        rules: { loaded: rulesLoaded, rules: service.registry.ruleSet.rules.length },
        ...(service.kafka !== null ? { kafka: { groups } } : {}),
      },
    };
  }

  const json = (body: unknown, status = 200, headers: Record<string, string> = {}) =>
    new Response(JSON.stringify(body), {
      status,
      headers: { "content-type": "application/json; charset=utf-8", "cache-control": "no-store", ...headers },
    });
  const error = (status: number, message: string, headers: Record<string, string> = {}) =>
    json({ error: message }, status, headers);
  // `/api/sensors` as sent, shared by the requests of the next `SENSORS_SHARE_MS`: 40 clients asking
  // at once built and held 40 copies (30.3 MB each at 100,000 sensors, 410-630 ms of main thread
  // each). The values may then be that much older than the request, as the live stream's are; a
  // reload, a new alert or a new sensor is never shared across.
  const sensorsJson = shareFleet((s) => JSON.stringify({ sensors: sensorsView(s) }));
  // The live stream's first picture of the fleet, encoded, shared the same way (it needs no token
  // either): 64 streams (HTTP_MAX_STREAMS) opened over 10,000 sensors built and held 64 copies,
  // 9.5 s of main thread in all and RSS +330 MB while their clients did not read.
  const sensorChunks = shareFleet((s) =>
    sensorMessages(sensorsView(s), live.maxSensorsPerFlush).map(encodeMessage)
  );
  // `/api/alerts` as sent, per filter, shared the same way but only while nothing it shows moved (see
  // `shareAlerts`): at 10,000 open alerts each answer was 118 ms of main thread and 3.4 MB.
  const alertsJson = shareAlerts(live);
  const whatIf = whatIfRoute({ history: opts.history ?? null, token: opts.token, logger }, json);

  async function route(req: Request, info: RequestInfo): Promise<Response> {
    const host = req.headers.get("host");
    if (!hostAllowed(host)) {
      return error(
        421,
        `Host "${host ?? ""}" is not a name of this server: add it to HTTP_ALLOWED_HOSTS if it is`,
      );
    }
    const url = new URL(req.url);
    const path = url.pathname;
    const ack = /^\/api\/alerts\/([^/]+)\/ack$/.exec(path);
    if (ack !== null) {
      if (req.method !== "POST") return error(405, "Use POST", { allow: "POST" });
      const denied = checkWrite(req, opts.token);
      if (denied !== null) return error(denied.status, denied.error);
      let id: string;
      try {
        id = decodeURIComponent(ack[1]!);
      } catch {
        return error(400, `Alert id "${ack[1]}" is not valid percent-encoding`);
      }
      if (service === null) return error(503, "Service is starting");
      const by = await actor(req);
      const result = await acknowledge(service, live, id, by);
      if (!result.ok) return error(result.status, result.error);
      logger.info("Alert acknowledged", {
        alert_id: id,
        rule: result.alert.rule_id,
        sensor_id: result.alert.sensor_id,
        by,
      });
      return json({ alert: result.alert });
    }
    if (path === "/api/silences" || path.startsWith("/api/silences/")) {
      return silencesRoute(req, path, {
        silences: service?.silences ?? null,
        token: opts.token,
        logger,
        json,
      });
    }
    if (path === "/api/whatif") return await whatIf(req);
    if (req.method !== "GET" && req.method !== "HEAD") return error(405, "Use GET", { allow: "GET, HEAD" });
    switch (path) {
      case "/":
        return new Response(files.get("dashboard.html"), {
          headers: { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" },
        });
      case "/dashboard.js":
      case "/dom.js":
      case "/silences.js":
      case "/whatif.js":
      case "/fleet.js":
        return new Response(files.get(path.slice(1)), {
          headers: { "content-type": "text/javascript; charset=utf-8", "cache-control": "no-store" },
        });
      case "/healthz":
        return json({ status: "ok", uptime_seconds: Math.round((Date.now() - startedAt) / 1000) });
      case "/readyz": {
        const r = ready();
        return json(r, r.ready ? 200 : 503);
      }
      case "/metrics":
        // Counters only: a scrape that brought every changed sensor's stats over from the workers
        // cost them and the main thread as much as a dashboard (a scrape a second: +86 MiB peak RSS
        // catching up, scripts/bench/workers.ts).
        await service?.refresh?.({ sensors: false });
        return new Response(await metrics.metrics(), { headers: { "content-type": metrics.contentType } });
    }
    // Unauthenticated from here on, and with engine workers a refresh is a snapshot of every worker,
    // taken in its thread between batches of events: one with sensors lists the worker's whole fleet
    // (84 ms at 100,000 sensors). Every path got one with sensors, a 404 included.
    const wants = READ_ROUTES.get(path);
    if (wants === undefined) return error(404, `No route for "${path}"`);
    if (service === null) return error(503, "Service is starting");
    // What the engine committed before this request is in the answer, wherever the engine runs.
    await service.refresh?.({ sensors: wants === "sensors" });
    switch (path) {
      case "/api/sensors":
        return new Response(sensorsJson(service), {
          headers: { "content-type": "application/json; charset=utf-8", "cache-control": "no-store" },
        });
      case "/api/alerts": {
        let filter;
        try {
          filter = parseAlertFilter(url.searchParams);
        } catch (err) {
          return error(400, (err as Error).message);
        }
        return new Response(alertsJson(service, filter), {
          headers: { "content-type": "application/json; charset=utf-8", "cache-control": "no-store" },
        });
      }
      case "/api/rules":
        return json(rulesView(service.registry, service.notifiers));
      case "/api/stream": {
        const sse = {
          "content-type": "text/event-stream; charset=utf-8",
          "cache-control": "no-store",
          "x-accel-buffering": "no",
        };
        if (req.method === "HEAD") return new Response(null, { headers: sse });
        const evicted = live.clients >= limits.maxStreams ? live.evictStalled(limits.streamStallMs) : null;
        if (evicted !== null) {
          logger.warn("Closed a stalled live stream to make room for a new one", {
            stalled_ms: evicted.stalledMs,
            queued_bytes: evicted.queuedBytes,
            streams: live.clients,
          });
        }
        const crowded = live.clients >= limits.maxStreams ? live.evictCrowded(info.client) : null;
        if (crowded !== null) {
          logger.warn("Closed a live stream of the address with the most to make room for another address", {
            address: crowded.source,
            its_streams: crowded.streams,
            streams: live.clients,
          });
        }
        if (live.clients >= limits.maxStreams) {
          return error(
            503,
            `Already ${live.clients} live streams (HTTP_MAX_STREAMS): close a dashboard or raise the limit`,
            { "retry-after": "10" },
          );
        }
        const s = service;
        const initial: (LiveMessage | Uint8Array)[] = [
          { event: "hello", data: { mode: opts.mode, auth: opts.token !== null } },
          statsMessage(),
          ...sensorChunks(s),
          {
            event: "alerts",
            data: { alerts: alertsView(s, live, { priorities: null, state: null }).active },
          },
          { event: "rules", data: rulesView(s.registry, s.notifiers) },
        ];
        return new Response(live.subscribe(initial, info.client), { headers: sse });
      }
    }
    return error(404, `No route for "${path}"`);
  }

  let server: Served;
  try {
    server = await serve({
      hostname: opts.host,
      port: opts.port,
      requestTimeoutMs: limits.requestTimeoutMs,
      maxConnections: limits.maxConnections,
      maxBodyBytes: limits.maxBodyBytes,
      maxPendingBytes: limits.maxPendingBytes,
      headers: answerHeaders,
      onError: (err) => {
        logger.error("HTTP handler failed", { error: err });
        return error(500, "Internal error");
      },
      onServerError: (err) => logger.error("HTTP server failed", { error: err }),
    }, async (req, info) => {
      const started = performance.now();
      const res = await route(req, info);
      if (logger.enabled("debug")) {
        logger.debug("HTTP request", {
          method: req.method,
          path: new URL(req.url).pathname,
          status: res.status,
          ms: Math.round(performance.now() - started),
        });
      }
      return res;
    });
  } catch (err) {
    throw new Error(
      `Cannot listen on ${opts.host}:${opts.port}: ${(err as Error).message} (set HTTP_PORT or --http-port)`,
      { cause: err },
    );
  }
  const boundUrl = `http://${
    server.hostname.includes(":") ? `[${server.hostname}]` : server.hostname
  }:${server.port}`;
  logger.info("HTTP listening", { url: boundUrl, auth: opts.token !== null ? "bearer" : "loopback" });

  return {
    url: boundUrl,
    attach(s) {
      service = s;
      // Attached early (before the consumers start) and again once started: one lag reader.
      if (s.kafka !== null && lag === null) {
        lag = new ConsumerLag({
          client: s.kafka.client,
          groups: s.kafka.sources.map((src) => ({ group: src.groupId, topic: src.topic })),
        });
      }
    },
    async close() {
      sensorsJson.clear();
      sensorChunks.clear();
      alertsJson.clear();
      live.close();
      await server.shutdown();
      await lag?.close();
    },
  };
}

/**
 * `build` of the fleet, shared by the requests of the next `SENSORS_SHARE_MS` (unless an alert, a
 * sensor or a reload came between), then dropped rather than kept until the next request: at
 * 100,000 sensors it is 30 MB.
 */
function shareFleet<T>(build: (s: Service) => T): ((s: Service) => T) & { clear(): void } {
  let cache: { key: string; rules: unknown; value: T } | null = null;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const get = (s: Service): T => {
    const p = s.pipeline;
    const rules = s.registry.ruleSet;
    const key = `${p?.counters.alerts}:${p?.stats.size}`;
    if (cache !== null && cache.rules === rules && cache.key === key) return cache.value;
    const value = build(s);
    cache = { key, rules, value };
    clearTimeout(timer);
    timer = setTimeout(() => cache = null, SENSORS_SHARE_MS);
    return value;
  };
  return Object.assign(get, {
    clear() {
      clearTimeout(timer);
      cache = null;
    },
  });
}

/** Filters whose `/api/alerts` answers are kept at once: the unfiltered one and a few the dashboard or a script asks. */
const ALERTS_SHARED_FILTERS = 8;

/**
 * `/api/alerts` as sent (UTF-8), per filter, shared by the requests of the next `SENSORS_SHARE_MS`
 * while nothing it shows has changed; dropped after that, not kept until the next request (3.4 MB at
 * 10,000 open alerts). What it shows, and what says it changed:
 * - the open episodes: the same alert objects, acknowledged alike (a change of an episode's alert is
 *   a new object, which the engine workers' snapshots rely on too): a new, resolved, escalated,
 *   repeated, flapping or acknowledged alert, a reload or a rebalance that ended episodes. Compared
 *   one by one: the tracker changes in many places, in this thread or in engine workers, and a walk
 *   of 10,000 references is a fraction of a millisecond against the 118 ms of the answer;
 * - the recent alerts: `LiveFeed.alertsVersion` (an alert, an acknowledgement);
 * - `silenced_by`: `Silences.version` (a silence kept, edited, expired, forgotten, started or ended)
 *   and `nextChangeAt` (a start or end due before its timer fired);
 * - `inhibited_by`, `held_by_storm_guard`: `Dispatcher.statusVersion`;
 * - the rules (inhibit rules among them) and the notifier configuration: a reload.
 */
function shareAlerts(
  live: LiveFeed,
): ((s: Service, filter: AlertFilter) => Uint8Array<ArrayBuffer>) & { clear(): void } {
  interface Shared {
    key: string;
    rules: unknown;
    alerts: (SensorAlert | null)[];
    acknowledged: boolean[];
    until: number;
    body: Uint8Array<ArrayBuffer>;
  }
  const cache = new Map<string, Shared>();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const sameEpisodes = (shared: Shared, episodes: readonly OpenEpisode[]) => {
    if (episodes.length !== shared.alerts.length) return false;
    for (let i = 0; i < episodes.length; i++) {
      const ep = episodes[i]!;
      if (ep.alert !== shared.alerts[i] || ep.acknowledged !== shared.acknowledged[i]) return false;
    }
    return true;
  };
  const get = (s: Service, filter: AlertFilter) => {
    const now = Date.now();
    const filterKey = `${[...filter.priorities ?? []].sort().join(",")}|${
      filter.priorities === null
    }|${filter.state}`;
    const notifiers = s.notifiers.status();
    const key = `${live.alertsVersion}:${s.silences.version}:${s.dispatcher?.statusVersion}:` +
      `${notifiers.loaded_at}:${notifiers.reload_errors}`;
    const rules = s.registry.ruleSet;
    const episodes = s.pipeline?.tracker.active() ?? [];
    const shared = cache.get(filterKey);
    if (
      shared !== undefined && shared.key === key && shared.rules === rules && now < shared.until &&
      sameEpisodes(shared, episodes)
    ) {
      return shared.body;
    }
    const body = encoder.encode(JSON.stringify(alertsView(s, live, filter)));
    cache.delete(filterKey);
    for (const [k, v] of cache) if (v.until <= now || cache.size >= ALERTS_SHARED_FILTERS) cache.delete(k);
    cache.set(filterKey, {
      key,
      rules,
      alerts: episodes.map((ep) => ep.alert),
      acknowledged: episodes.map((ep) => ep.acknowledged),
      until: Math.min(now + SENSORS_SHARE_MS, s.silences.nextChangeAt),
      body,
    });
    clearTimeout(timer);
    timer = setTimeout(() => cache.clear(), SENSORS_SHARE_MS);
    return body;
  };
  return Object.assign(get, {
    clear() {
      clearTimeout(timer);
      cache.clear();
    },
  });
}

const encoder = new TextEncoder();

/**
 * The headers of every answer. The CSP allows what the dashboard uses and nothing else: its script
 * file, its inline style by hash (so no 'unsafe-inline', and the page stays one file), requests to
 * this server. `frame-ancestors 'none'` and `X-Frame-Options` keep any page from framing it, so the
 * Ack button cannot be clickjacked.
 */
function securityHeaders(styleHashes: string[]): Record<string, string> {
  const csp = [
    "default-src 'none'",
    "script-src 'self'",
    `style-src ${styleHashes.map((h) => `'${h}'`).join(" ") || "'none'"}`,
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join("; ");
  return {
    "content-security-policy": csp,
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cross-origin-resource-policy": "same-origin",
  };
}

/** The CSP sources (`sha256-...`) of the page's inline `<style>` elements. */
async function styleHashes(html: string): Promise<string[]> {
  const out: string[] = [];
  for (const m of html.matchAll(/<style>([\s\S]*?)<\/style>/g)) {
    const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(m[1]));
    out.push(`sha256-${btoa(String.fromCharCode(...new Uint8Array(digest)))}`);
  }
  return out;
}

/** Who acknowledged: `{"by": "..."}` in the body, else "api". */
async function actor(req: Request): Promise<string> {
  const text = await req.text();
  if (text.trim() === "") return "api";
  try {
    const body = JSON.parse(text) as { by?: unknown };
    if (typeof body.by === "string" && body.by.trim() !== "") return body.by.trim().slice(0, 100);
  } catch { /* a body that is not JSON is ignored, the acknowledgement is what counts */ }
  return "api";
}

/** Readiness's reason for partitions held back: the first one's, and how many there are. */
function heldReason(sources: readonly SourceView[]): string | null {
  for (const s of sources) {
    const [first] = s.held;
    if (first === undefined) continue;
    const [partition, why] = first;
    const more = s.held.size > 1 ? ` (and ${s.held.size - 1} more)` : "";
    return `partition ${partition} of "${s.topic}" held back${more}: ${why}`;
  }
  return null;
}
