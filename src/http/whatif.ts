/**
 * `POST /api/whatif`: the YAML text of one rule, run over recent events by the backtest
 * (src/backtest/whatif.ts); nothing of it reaches the rules in force. Guarded like the API's writes
 * (`checkWrite`), and bounded: it costs the service a second or two of work and tens of MB (the
 * events topic read, the engine over up to 100,000 events), so one runs at a time, within a time limit.
 *
 * @module
 */
import {
  EventHistory,
  parseOneRule,
  whatIf,
  whatIfDefaults,
  type WhatIfHistory,
  WhatIfRuleError,
} from "../backtest/whatif.ts";
import { TopicHistory } from "../backtest/whatif_topic.ts";
import { type Config, runMode } from "../config.ts";
import { DURATION_PATTERN, durationMs } from "../contract/duration.ts";
import { type Logger, redact } from "../log.ts";
import type { PipelineObserver } from "../pipeline.ts";
import { createKafka, kafkaSettingsFromEnv } from "../transport/kafka.ts";
import { checkWrite } from "./auth.ts";

/**
 * What the what-if reads for this configuration, and the observer that feeds it. With Kafka, the events
 * topic: the engine runs in worker threads, and other instances own other partitions, so this thread
 * sees few or none of the events. Without, the accepted events kept in memory.
 */
export function whatIfHistory(
  config: Config,
  logger: Logger,
): { history: WhatIfHistory; observe<T extends PipelineObserver>(observer: T): PipelineObserver } {
  if (runMode(config) === "kafka") {
    const history = new TopicHistory({
      // Its own client, so it can fail fast: two retries, not the service's five (~10 s), when the
      // broker is away, and the request is answered 503 at once.
      kafka: createKafka(kafkaSettingsFromEnv(config.brokers), logger, { retries: 2 }),
      topic: config.topics.events,
      logger: logger.child({ stage: "whatif" }),
      maxFutureSkewMs: config.maxFutureSkewMs,
    });
    return { history, observe: (observer) => observer };
  }
  const history = new EventHistory();
  return { history, observe: (observer) => observeHistory(observer, history) };
}

/**
 * `observer` with `history` fed every accepted event too. A proxy, not a copy of its methods, so
 * whatever the observer grows later still arrives; each method is bound once, not per event.
 */
export function observeHistory<T extends PipelineObserver>(
  observer: T,
  history: EventHistory,
): PipelineObserver {
  const bound = new Map<PropertyKey, unknown>();
  const onEvent: PipelineObserver["onEvent"] = (e, record) => {
    observer.onEvent?.(e, record);
    history.onEvent(e, record);
  };
  return new Proxy(observer, {
    get(target, prop) {
      if (prop === "onEvent") return onEvent;
      let v = bound.get(prop);
      if (v === undefined) {
        v = Reflect.get(target, prop, target);
        if (typeof v === "function") v = v.bind(target);
        bound.set(prop, v);
      }
      return v;
    },
  });
}

export interface WhatIfRouteOptions {
  /** Where the events come from; null when this process has none to give. */
  history: WhatIfHistory | null;
  token: string | null;
  logger: Logger;
  /** What-ifs running at once; one more is answered 429. */
  concurrent?: number;
  /** Reading and judging stop after this; the answer says `timed_out`. */
  timeLimitMs?: number;
}

type Json = (body: unknown, status?: number, headers?: Record<string, string>) => Response;

/**
 * The what-if's request handler; `json` builds the server's JSON responses. One handler per server:
 * it counts the what-ifs running.
 */
export function whatIfRoute(opts: WhatIfRouteOptions, json: Json): (req: Request) => Promise<Response> {
  const { history, token, logger } = opts;
  const concurrent = opts.concurrent ?? 1;
  let running = 0;
  return async (req) => {
    if (req.method !== "POST") return json({ error: "Use POST" }, 405, { allow: "POST" });
    const denied = checkWrite(req, token);
    if (denied !== null) return json({ error: denied.error }, denied.status);
    if (history === null) {
      return json({ error: "This process keeps no event history: it runs no engine" }, 409);
    }
    let body: { rule?: unknown; window?: unknown } | null;
    try {
      body = await req.json();
    } catch {
      return json({ error: 'The body must be JSON: {"rule": "<the YAML text of one rule>"}' }, 400);
    }
    const text = body?.rule;
    if (typeof text !== "string" || text.trim() === "") {
      return json({ error: '"rule" must be the YAML text of one rule' }, 400);
    }
    let windowMs = Math.min(whatIfDefaults.windowMs, history.maxWindowMs);
    if (body?.window !== undefined) {
      const w = body.window;
      if (typeof w !== "string" || !DURATION_PATTERN.test(w) || durationMs(w) <= 0) {
        return json({ error: `"window" must be a duration like "1h", got ${quoted(w)}` }, 400);
      }
      windowMs = durationMs(w);
      if (windowMs > history.maxWindowMs) {
        return json({
          error: `"window" must be at most "${durationText(history.maxWindowMs)}", got "${w}"`,
        }, 400);
      }
    }
    let ruleSet;
    try {
      ruleSet = parseOneRule(text);
    } catch (err) {
      if (!(err instanceof WhatIfRuleError)) throw err;
      return json({ error: err.message, problems: err.problems }, 400);
    }
    if (running >= concurrent) {
      return json(
        { error: "A what-if is already running: try again once it has finished" },
        429,
        { "retry-after": "5" },
      );
    }
    running++;
    const rule = ruleSet.rules[0]!.rule.id;
    const started = performance.now();
    try {
      const result = await whatIf(ruleSet, history, {
        windowMs,
        ...(opts.timeLimitMs !== undefined ? { timeLimitMs: opts.timeLimitMs } : {}),
      });
      logger.info("What-if run", {
        rule,
        source: history.source,
        events: result.history.events,
        capped: result.history.capped,
        timed_out: result.history.timed_out,
        ms: Math.round(performance.now() - started),
      });
      return json(result);
    } catch (err) {
      // The broker away, the topic gone: the events cannot be had now; the request may be tried again.
      logger.warn("What-if could not read its events", { rule, source: history.source, error: err });
      // The client's message may name what the broker was told (a SASL user's password, say).
      return json({
        error: redact(`Cannot read ${history.label}: ${(err as Error)?.message ?? String(err)}`),
      }, 503);
    } finally {
      running--;
    }
  };
}

function quoted(v: unknown): string {
  return typeof v === "string" ? `"${v}"` : JSON.stringify(v) ?? String(v);
}

/** `86400000` → `24h`, `5400000` → `90m`: the largest unit that divides it. */
function durationText(ms: number): string {
  for (const [unit, size] of [["h", 3_600_000], ["m", 60_000], ["s", 1000]] as const) {
    if (ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}
