/**
 * Silences in rule tests: what the notifier stage would notify of a test's alerts, in the test's
 * virtual time, as the service's silence gate decides it. A silenced alert is suppressed (its newest
 * firing state held); when its silence ends and it still fires and nothing else silences it, it is
 * notified then (`released`); one that resolved meanwhile is never notified.
 *
 * @module
 */
import { z } from "zod";
import { compileMatcher, type Matcher, MatcherError, matchesAll } from "../contract/matcher.ts";
import type { SensorAlert } from "../contract/schemas.ts";
import { Duration, durationMs } from "./schema.ts";

export const TestSilence = z.strictObject({
  /** How `silenced_by` names it (default `silence-1`, `silence-2`, … in the order written). */
  id: z.string().min(1).optional(),
  matchers: z.array(z.strictObject({
    name: z.string().min(1),
    value: z.string(),
    is_regex: z.boolean().default(false),
    is_equal: z.boolean().default(true),
  })).min(1),
  starts_at: Duration.default(0).describe("When it starts, relative to the test's start"),
  ends_at: Duration.describe("When it ends (exclusive), relative to the test's start"),
}).refine((s) => durationMs(s.ends_at) > durationMs(s.starts_at), {
  path: ["ends_at"],
  message: "must be after starts_at",
});
export type TestSilence = z.infer<typeof TestSilence>;

/** An alert as the notifier stage would have it: `t` its time relative to the test's start. */
export interface SilencedOutcome {
  /** Notified: at the alert's time, or at its silence's end when it was held (`released`). */
  notifications: { t: number; alert: SensorAlert; released: boolean }[];
  /** Held back when they came, with the ids of the silences that matched. */
  suppressed: { t: number; alert: SensorAlert; silenced_by: string[] }[];
}

interface Compiled {
  id: string;
  start: number;
  end: number;
  matchers: Matcher[];
}

/** A silence of a test whose matchers cannot be compiled; the message names it. */
export class TestSilenceError extends TypeError {
  override name = "TestSilenceError";
}

/** What is notified of `alerts` (in the order they came) under `silences`. */
export function applySilences(
  silences: readonly TestSilence[],
  alerts: readonly SensorAlert[],
  t0: number,
): SilencedOutcome {
  const compiled = silences.map(compile);
  const out: SilencedOutcome = { notifications: [], suppressed: [] };
  const held = new Map<string, SensorAlert>();
  const silencing = (alert: SensorAlert, t: number) =>
    compiled.filter((s) => s.start <= t && t < s.end && matchesAll(s.matchers, alert)).map((s) => s.id);
  const release = (t: number) => {
    for (const [id, alert] of held) {
      if (silencing(alert, t).length > 0) continue;
      held.delete(id);
      out.notifications.push({ t, alert, released: true });
    }
  };
  // A silence's end releases what it held before the alerts of that instant are looked at: it holds
  // until its end, exclusive.
  const ends = [...new Set(compiled.map((s) => s.end))].sort((a, b) => a - b);
  let next = 0;
  for (const alert of alerts) {
    const t = Date.parse(alert.timestamp) - t0;
    while (next < ends.length && ends[next]! <= t) release(ends[next++]!);
    const by = silencing(alert, t);
    if (by.length === 0) {
      held.delete(alert.alert_id);
      out.notifications.push({ t, alert, released: false });
      continue;
    }
    out.suppressed.push({ t, alert, silenced_by: by });
    if (alert.state === "firing") held.set(alert.alert_id, alert);
    else held.delete(alert.alert_id);
  }
  while (next < ends.length) release(ends[next++]!);
  return out;
}

function compile(s: TestSilence, i: number): Compiled {
  const id = s.id ?? `silence-${i + 1}`;
  const matchers = s.matchers.map((m, j) => {
    try {
      return compileMatcher(m);
    } catch (err) {
      if (!(err instanceof MatcherError)) throw err;
      throw new TestSilenceError(`Silence "${id}", matcher #${j + 1}: ${err.message}`, { cause: err });
    }
  });
  return { id, start: durationMs(s.starts_at), end: durationMs(s.ends_at), matchers };
}
