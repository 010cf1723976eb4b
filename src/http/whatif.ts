/**
 * `POST /api/whatif`: the YAML text of one rule, run over the service's recent events by the backtest
 * (src/backtest/whatif.ts); nothing of it reaches the rules in force. Guarded like the API's writes
 * (`checkWrite`): it costs the service up to half a second of work.
 *
 * @module
 */
import { type EventHistory, parseOneRule, whatIf, WhatIfRuleError } from "../backtest/whatif.ts";
import type { PipelineObserver } from "../pipeline.ts";
import { checkWrite } from "./auth.ts";

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

/** Answers a what-if request; `json` builds the server's JSON responses. */
export async function whatIfRoute(
  req: Request,
  history: EventHistory | null,
  token: string | null,
  json: (body: unknown, status?: number, headers?: Record<string, string>) => Response,
): Promise<Response> {
  if (req.method !== "POST") return json({ error: "Use POST" }, 405, { allow: "POST" });
  const denied = checkWrite(req, token);
  if (denied !== null) return json({ error: denied.error }, denied.status);
  if (history === null) return json({ error: "This process keeps no event history: it runs no engine" }, 409);
  let text: unknown;
  try {
    text = (await req.json() as { rule?: unknown })?.rule;
  } catch {
    return json({ error: 'The body must be JSON: {"rule": "<the YAML text of one rule>"}' }, 400);
  }
  if (typeof text !== "string" || text.trim() === "") {
    return json({ error: '"rule" must be the YAML text of one rule' }, 400);
  }
  let ruleSet;
  try {
    ruleSet = parseOneRule(text);
  } catch (err) {
    if (!(err instanceof WhatIfRuleError)) throw err;
    return json({ error: err.message, problems: err.problems }, 400);
  }
  return json(await whatIf(ruleSet, history));
}
