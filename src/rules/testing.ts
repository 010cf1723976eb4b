/**
 * Rule unit tests written in YAML (`rules/tests/*.yaml`): input events at relative times, expected
 * alerts and aggregates, evaluated in virtual time by the same engine the service runs; with
 * `silences`, also what the notifier stage notifies and holds back.
 *
 * @module
 */
import { z } from "zod";
import {
  type AggregatedSensorEvent,
  type SensorAlert,
  SensorEvent,
  SensorType,
} from "../contract/schemas.ts";
import { parseYamlWith, type YamlProblem } from "../yaml.ts";
import type { CompiledRule } from "./compile.ts";
import { type CompiledInhibition, Inhibitor } from "./inhibit.ts";
import { emptyOutput, RuleEngine } from "./engine.ts";
import { Limits } from "./limits.ts";
import { RuleSet } from "./ruleset.ts";
import { Duration, durationMs } from "./schema.ts";
import { applySilences, TestSilence, TestSilenceError } from "./test_silences.ts";

const Scalar = z.union([z.string(), z.number(), z.boolean(), z.null()]);

const TestEvent = z.strictObject({
  at: Duration.describe("When, relative to the test's start"),
  every: Duration.optional().describe("Repeat every this long…"),
  until: Duration.optional().describe("…until this time (exclusive)"),
  event_id: z.string().optional(),
  sensor_id: z.string().min(1).optional(),
  sensor_type: SensorType.optional(),
  value: z.number(),
  unit: z.string().optional(),
  location: z.string().nullable().optional(),
  metadata: z.record(z.string(), z.unknown()).optional(),
});

const Expected = z.record(z.string(), Scalar).describe(
  "Fields to compare (others are ignored); `at` is the relative time, `rule` the rule id",
);

export const RuleTest = z.strictObject({
  name: z.string().min(1),
  /** Only these rules take part (default: every rule in the directory). */
  rules: z.array(z.string()).optional(),
  start: z.iso.datetime({ offset: true }).default("2026-01-01T00:00:00Z"),
  defaults: TestEvent.partial().omit({ at: true, every: true, until: true, value: true }).default({}),
  events: z.array(TestEvent).default([]),
  /** Clock ticks with no event (windows close, deadman rules look for silence). */
  ticks: z.array(Duration).default([]),
  /** Acknowledgements, as the API makes them: the open alert of a rule and group (a sensor id). */
  acks: z.array(z.strictObject({
    at: Duration,
    rule: z.string().min(1),
    group: z.string().min(1),
  })).default([]),
  /** Silences in the test's time: `expect.notifications` and `expect.suppressed` say what they did. */
  silences: z.array(TestSilence).default([]),
  expect: z.strictObject({
    alerts: z.array(Expected).optional(),
    aggregates: z.array(Expected).optional(),
    notifications: z.array(Expected).optional().describe(
      "Alerts notified: `at` is when (a silence's end for one it held), `released` true for those",
    ),
    suppressed: z.array(Expected).optional().describe(
      "Alerts a silence held back when they came; `silenced_by` the silences' ids, comma-separated",
    ),
  }),
});
export type RuleTest = z.infer<typeof RuleTest>;

export const RuleTestFile = z.strictObject({
  rules_dir: z.string().min(1).optional().describe(
    "Run these tests against the rules of this directory (relative to this file), not the checked one's",
  ),
  tests: z.array(RuleTest).min(1),
});

export interface TestResult {
  file: string;
  name: string;
  passed: boolean;
  /** A readable diff when it failed. */
  diff: string;
}

export function parseRuleTestFile(
  file: string,
  text: string,
): { tests: RuleTest[]; problems: YamlProblem[]; rulesDir: string | null } {
  const { data, problems } = parseYamlWith(file, text, RuleTestFile);
  const dir = data?.rules_dir;
  const rulesDir = dir === undefined
    ? null
    : dir.startsWith("/")
    ? dir
    : `${file.replace(/[^/]*$/, "")}${dir}`;
  return { tests: data?.tests ?? [], problems, rulesDir };
}

/**
 * Runs one test against the compiled rules (and the limits tables in force), in virtual time. Each
 * alert gets `inhibited`: whether the inhibit rules would keep the notifier stage from notifying it
 * (the alerts before it decide).
 */
export function runRuleTest(
  file: string,
  test: RuleTest,
  rules: readonly CompiledRule[],
  inhibitions: readonly CompiledInhibition[] = [],
  limits: Limits = Limits.EMPTY,
): TestResult {
  const t0 = Date.parse(test.start);
  const unknown = (test.rules ?? []).filter((id) => !rules.some((r) => r.rule.id === id));
  if (unknown.length > 0) {
    return { file, name: test.name, passed: false, diff: `Unknown rule(s): ${unknown.join(", ")}` };
  }
  const selected = test.rules === undefined ? rules : rules.filter((r) => test.rules!.includes(r.rule.id));
  const engine = new RuleEngine();
  engine.setRules(new RuleSet(selected, inhibitions, limits));

  type Step = { t: number; event?: SensorEvent; ack?: { rule: string; group: string } };
  const steps: Step[] = ruleTestEvents(test);
  for (const tick of test.ticks) steps.push({ t: durationMs(tick) });
  for (const { at, ...ack } of test.acks) steps.push({ t: durationMs(at), ack });
  // Stable: events keep their order, and a tick comes after the events of its time.
  steps.sort((a, b) => a.t - b.t);

  const out = emptyOutput();
  const alerts: SensorAlert[] = [];
  const inhibitor = new Inhibitor(() => inhibitions);
  const aggregates: AggregatedSensorEvent[] = [];
  const errors: string[] = [];
  const collect = () => {
    for (const a of out.alerts.splice(0)) {
      inhibitor.observe(a);
      alerts.push({ ...a, inhibited: inhibitor.inhibits(a) } as SensorAlert);
    }
    aggregates.push(...out.aggregates.splice(0));
    for (const e of out.errors.splice(0)) errors.push(`Rule "${e.rule.rule.id}" failed: ${e.error.message}`);
  };
  // As a replay runs (`deno task start --input`): the clock is event time, moved by the events and
  // by the test's `ticks`; at the end of the input the last windows close.
  for (const step of steps) {
    if (step.event !== undefined) engine.onEvent(step.event, t0 + step.t, out);
    else if (step.ack !== undefined) {
      const ep = engine.tracker.episode(step.ack.rule, step.ack.group);
      // Not a notification: the API publishes it as an update (`ack_update`), which notifies nobody.
      if (ep?.alert == null || engine.acknowledge(ep.alert_id, "rules:test") === null) {
        errors.push(
          `No open alert of rule "${step.ack.rule}" for "${step.ack.group}" to acknowledge at ${
            relative(step.t)
          }`,
        );
      }
    } else engine.tick(out, 0, t0 + step.t);
    collect();
  }
  engine.flush(out);
  collect();

  const diffs = [...errors, ...ruleTestDiff(test, alerts, aggregates)];
  return { file, name: test.name, passed: diffs.length === 0, diff: diffs.join("\n") };
}

/** A test's input events in time order, each with its time relative to the test's start. */
export function ruleTestEvents(test: RuleTest): { t: number; event: SensorEvent }[] {
  const t0 = Date.parse(test.start);
  const steps: { t: number; event: SensorEvent }[] = [];
  let n = 0;
  for (const e of test.events) {
    const at = durationMs(e.at);
    const every = e.every === undefined ? null : durationMs(e.every);
    const until = e.until === undefined ? at + 1 : durationMs(e.until);
    for (let t = at; every === null ? t === at : t < until; t += every ?? 1) {
      const merged = { ...test.defaults, ...e };
      const event = SensorEvent.parse({
        event_id: merged.event_id !== undefined && every === null ? merged.event_id : `test-${++n}`,
        sensor_id: merged.sensor_id ?? "sensor-1",
        sensor_type: merged.sensor_type ?? "temperature",
        value: e.value,
        unit: merged.unit ?? "",
        timestamp: new Date(t0 + t).toISOString(),
        location: merged.location ?? null,
        metadata: merged.metadata ?? {},
      });
      steps.push({ t, event });
      if (every === null) break;
    }
  }
  return steps.sort((a, b) => a.t - b.t);
}

/** How the alerts and aggregates that came out differ from what the test expects; empty when they agree. */
export function ruleTestDiff(
  test: RuleTest,
  alerts: readonly SensorAlert[],
  aggregates: readonly AggregatedSensorEvent[],
): string[] {
  const t0 = Date.parse(test.start);
  const diffs: string[] = [];
  if (test.expect.alerts !== undefined) {
    const actual = alerts.map((a) => ({ ...a, at: relative(Date.parse(a.timestamp) - t0), rule: a.rule_id }));
    diffs.push(...compare("alert", test.expect.alerts, actual));
  }
  if (test.expect.aggregates !== undefined) {
    const actual = aggregates.map((a) => ({
      ...a,
      at: relative(Date.parse(a.window_end) - t0),
      rule: a.rule_id,
    }));
    diffs.push(...compare("aggregate", test.expect.aggregates, actual));
  }
  const { notifications, suppressed } = test.expect;
  if (notifications !== undefined || suppressed !== undefined) {
    let outcome: ReturnType<typeof applySilences>;
    try {
      outcome = applySilences(test.silences, alerts, t0);
    } catch (err) {
      if (!(err instanceof TestSilenceError)) throw err;
      return [...diffs, `  ! ${err.message}`];
    }
    const view = (t: number, a: SensorAlert) => ({ ...a, at: relative(t), rule: a.rule_id });
    if (notifications !== undefined) {
      const actual = outcome.notifications.map((n) => ({ ...view(n.t, n.alert), released: n.released }));
      diffs.push(...compare("notification", notifications, actual));
    }
    if (suppressed !== undefined) {
      const actual = outcome.suppressed.map((s) => ({
        ...view(s.t, s.alert),
        silenced_by: s.silenced_by.join(","),
      }));
      diffs.push(...compare("suppressed alert", suppressed, actual));
    }
  }
  return diffs;
}

/** `90000` → `1m30s`: how times read in a diff. */
function relative(ms: number): string {
  if (ms === 0) return "0s";
  const parts: string[] = [];
  let rest = ms;
  for (const [unit, size] of [["h", 3_600_000], ["m", 60_000], ["s", 1000], ["ms", 1]] as const) {
    const q = Math.floor(rest / size);
    if (q > 0) parts.push(`${q}${unit}`);
    rest -= q * size;
  }
  return parts.join("");
}

/**
 * Pairs expected with actual records: first those that agree on every field written, then by state and
 * rule (same time first), so one forgotten or extra record shows as that one record, not a shifted list.
 */
function compare(
  kind: string,
  expected: Record<string, unknown>[],
  actual: Record<string, unknown>[],
): string[] {
  const lines: string[] = [];
  const fields = new Set(actual.flatMap((a) => Object.keys(a)));
  const pairedActual = new Array<number>(expected.length).fill(-1);
  const used = new Set<number>();
  expected.forEach((e, i) => {
    const typos = Object.keys(e).filter((k) => !fields.has(k) && actual.length > 0);
    for (const k of typos) {
      lines.push(`  ! expected ${kind} #${i + 1} has "${k}": no such field in an ${kind}`);
    }
  });
  const agrees = (e: Record<string, unknown>, a: Record<string, unknown>, keys: string[]) =>
    keys.every((k) => k in e ? same(k, e[k], a[k]) : true);
  const pair = (keys: (e: Record<string, unknown>) => string[]) => {
    expected.forEach((e, i) => {
      if (pairedActual[i]! >= 0) return;
      const j = actual.findIndex((a, j) => !used.has(j) && agrees(e, a, keys(e)));
      if (j >= 0) {
        pairedActual[i] = j;
        used.add(j);
      }
    });
  };
  pair((e) => Object.keys(e));
  pair(() => ["state", "rule", "at"]);
  pair(() => ["state", "rule"]);
  expected.forEach((e, i) => {
    const j = pairedActual[i]!;
    if (j < 0) {
      lines.push(`  - missing ${kind} #${i + 1}: ${JSON.stringify(e)}`);
      return;
    }
    const a = actual[j]!;
    if (Object.keys(e).some((k) => fields.has(k) && !same(k, e[k], a[k]))) {
      lines.push(`  - expected ${kind} #${i + 1}: ${JSON.stringify(e)}`);
      lines.push(`  + actual   ${kind} #${j + 1}: ${summary(a, Object.keys(e))}`);
    }
  });
  const shown = Object.keys(expected[0] ?? { at: 0, rule: 0 });
  actual.forEach((a, j) => {
    if (!used.has(j)) lines.push(`  + unexpected ${kind} #${j + 1}: ${summary(a, shown)}`);
  });
  return lines;
}

function same(key: string, expected: unknown, actual: unknown): boolean {
  if (key === "at" && (typeof expected === "string" || typeof expected === "number")) {
    // Times may be written "90s", "1m30s" or 90 (seconds), as event times are.
    try {
      return durationMs(expected) === durationMs(actual as string);
    } catch {
      return expected === actual;
    }
  }
  if (typeof expected === "number" && typeof actual === "number") {
    return Math.abs(expected - actual) <= 1e-9 * Math.max(1, Math.abs(expected));
  }
  return expected === actual;
}

function summary(a: Record<string, unknown>, keys: string[]): string {
  return JSON.stringify(Object.fromEntries(keys.map((k) => [k, a[k]])));
}
