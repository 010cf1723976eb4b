/**
 * The rule file format (`rules/*.yaml`). This zod schema is the single source: the loader validates
 * with it and `rules/rules.schema.json` is generated from it for editors.
 *
 * @module
 */
import { z } from "zod";
import { DURATION_PATTERN, durationMs } from "../contract/duration.ts";
import { PRIORITIES, Priority, SensorType } from "../contract/schemas.ts";

/** `30s`, `5m`, `1h`, `250ms`, or a number of seconds. */
export const Duration = z.union([
  z.number().nonnegative(),
  z.string().regex(DURATION_PATTERN, 'must be a duration like "30s", "5m", "1h30m" or "250ms"'),
]).describe('A duration: "250ms", "30s", "5m", "1h30m", "1d", or a number of seconds');
export type Duration = z.infer<typeof Duration>;

export { durationMs };

/** A JSON-Logic expression; its operations are checked by the compiler, not by this schema. */
export const JsonLogic = z.unknown().describe(
  "A JSON-Logic expression (https://jsonlogic.com). Operations of ours: between, abs, hour_of_day; in an " +
    'event rule\'s condition or clear, per sensor: {"zscore": [field, half_life]}, {"ewma": [field, half_life]}, ' +
    '{"robust_zscore": [field, window]}, {"rate_of_change": [field, per]}',
);

const OneOrMany = <T extends z.ZodType>(t: T) => z.union([t, z.array(t).min(1)]);

export const Threshold = z.strictObject({
  min: z.number().optional().describe("Alert when the value is below this bound"),
  max: z.number().optional().describe("Alert when the value is above this bound"),
}).refine((t) => t.min !== undefined || t.max !== undefined, 'needs "min", "max" or both')
  .refine((t) => t.min === undefined || t.max === undefined || t.min <= t.max, '"min" must not exceed "max"');
export type Threshold = z.infer<typeof Threshold>;

/** One band of a limits table: the same shape as a threshold. */
export const LimitBand = z.strictObject({
  min: z.number().optional().describe("Alert when the value is below this bound"),
  max: z.number().optional().describe("Alert when the value is above this bound"),
}).refine((t) => t.min !== undefined || t.max !== undefined, 'needs "min", "max" or both')
  .refine((t) => t.min === undefined || t.max === undefined || t.min <= t.max, '"min" must not exceed "max"');

/**
 * Per-sensor limits a `limits:` rule refers to by name: the most specific entry for the event's sensor
 * applies, `sensor_id` over `location` over `sensor_type` over `default` (a sensor none covers is not
 * judged by the rule).
 */
export const LimitTable = z.strictObject({
  description: z.string().optional(),
  default: LimitBand.optional().describe("The band of any sensor no other entry covers"),
  sensor_type: z.partialRecord(SensorType, LimitBand).optional().describe("Bands by sensor type"),
  location: z.record(z.string().min(1), LimitBand).optional().describe("Bands by location (exact)"),
  sensor_id: z.record(z.string().min(1), LimitBand).optional().describe("Bands by sensor id (exact)"),
}).describe("A table of per-sensor limits; rules refer to it with `limits: <name>`");
export type LimitTable = z.infer<typeof LimitTable>;

export const LIMITS_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

export const AGGREGATE_FUNCTIONS = [
  "avg",
  "min",
  "max",
  "count",
  "sum",
  "stddev",
  "p95",
  "first",
  "last",
  "rate",
] as const;
export const AggregateFunction = z.enum(AGGREGATE_FUNCTIONS);
export type AggregateFunction = z.infer<typeof AggregateFunction>;

export const Window = z.discriminatedUnion("type", [
  z.strictObject({
    type: z.literal("tumbling"),
    size: Duration.describe("Length of each window, by event time"),
  }),
  z.strictObject({
    type: z.literal("sliding"),
    size: Duration.describe("Length of each window, by event time"),
    slide: Duration.describe("A new window starts every `slide`"),
  }),
  z.strictObject({
    type: z.literal("count"),
    size: z.int().min(1).describe("Number of events per window and group"),
  }),
]).describe("Aggregate events into windows; the condition is then evaluated over each closed window");
export type Window = z.infer<typeof Window>;

/** What a window groups by: a sensor field, or `metadata.<key>`. */
export const GroupBy = z.union([
  z.enum(["sensor_id", "sensor_type", "location"]),
  z.string().regex(
    /^metadata\.[A-Za-z0-9_.-]+$/,
    'must be "sensor_id", "sensor_type", "location" or "metadata.<key>"',
  ),
]);

/** The longest flapping window and storm guard interval (1d). */
const MAX_NOISE_WINDOW_MS = 86_400_000;

/** Flap detection: an alert that changes state too often is notified once as flapping, then quiet. */
export const Flapping = z.strictObject({
  window: Duration.describe(
    "How far back transitions count, and how long it must stay stable to end (at most 1d)",
  ),
  max_transitions: z.int().min(1).describe(
    "Firing and resolved transitions allowed within the window; one more makes it flapping",
  ),
});
export type Flapping = z.infer<typeof Flapping>;

/** One escalation step: a priority (and so a route) an unacknowledged alert takes once it has fired this long. */
export const EscalationStep = z.strictObject({
  after: Duration.describe("Time since the alert fired (event time)"),
  priority: Priority.describe("The alert's priority from then on"),
});
export type EscalationStep = z.infer<typeof EscalationStep>;

/** The storm guard: at most `count` notifications of the rule per `per`, the rest summed up in one. */
export const MaxNotifications = z.strictObject({
  count: z.int().min(1).describe("Notifications of this rule allowed per interval"),
  per: Duration.describe("The interval (at most 1d)"),
});
export type MaxNotifications = z.infer<typeof MaxNotifications>;

/** One step of a sequence: the events it matches (its selectors and condition, besides the rule's). */
export const SequenceStep = z.strictObject({
  sensor_type: OneOrMany(SensorType).optional().describe("Only events of these sensor types"),
  sensor_id: OneOrMany(z.string().min(1)).optional().describe("Only these sensor ids; '*' matches any run"),
  location: OneOrMany(z.string().min(1)).optional().describe("Only these locations; '*' matches any run"),
  condition: JsonLogic.describe("A JSON-Logic condition over the event; true: the event is this step"),
});
export type SequenceStep = z.infer<typeof SequenceStep>;

export const Sequence = z.strictObject({
  first: SequenceStep.describe("A: the event that starts a partial match in its group"),
  then: SequenceStep.optional().describe("B: fire when it follows A in the same group within `within`"),
  not_then: SequenceStep.optional().describe(
    "B: fire when it does not follow A in the same group within `within` (judged on the partition's clock)",
  ),
  within: Duration.describe("How long after A, in event time, B may come"),
  max_open: z.int().min(1).max(10_000).default(100).describe(
    "Partial matches (A waiting for B) kept per group; beyond, the oldest goes (counted in metrics)",
  ),
}).refine(
  (s) => (s.then === undefined) !== (s.not_then === undefined),
  'needs exactly one of "then" or "not_then"',
)
  .refine((s) => durationMs(s.within) > 0, '"within" must be greater than zero')
  .describe("Events in order: A then B within a time (or A not followed by B), per `group_by`");
export type Sequence = z.infer<typeof Sequence>;

export const Rule = z.strictObject({
  id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, "must be letters, digits, '.', '_' or '-'"),
  description: z.string().default(""),
  enabled: z.boolean().default(true),
  // Selectors
  sensor_type: OneOrMany(SensorType).optional().describe("Only events of these sensor types"),
  sensor_id: OneOrMany(z.string().min(1)).optional().describe("Only these sensor ids; '*' matches any run"),
  location: OneOrMany(z.string().min(1)).optional().describe("Only these locations; '*' matches any run"),
  match: JsonLogic.optional().describe("A JSON-Logic selector over the event"),
  // What raises the alert
  condition: JsonLogic.optional().describe(
    "A JSON-Logic condition over the event (or over the window's aggregate); true raises the alert",
  ),
  threshold: Threshold.optional(),
  limits: z.string().regex(LIMITS_NAME, "must be the name of a limits table").optional().describe(
    "A threshold per sensor: the name of a limits table (`limits:` of any rule file)",
  ),
  absent_for: Duration.optional().describe(
    "Deadman: alert when a matching sensor sends nothing for this long",
  ),
  sequence: Sequence.optional(),
  startup_grace: Duration.optional().describe(
    "Deadman: no alert before this long after start (default absent_for)",
  ),
  // Aggregation
  window: Window.optional(),
  group_by: OneOrMany(GroupBy).optional().describe("Window or sequence grouping (default sensor_id)"),
  value_of: AggregateFunction.optional().describe(
    "The aggregate that is the alert's value and that a threshold applies to (default avg)",
  ),
  publish: z.boolean().default(false).describe("Publish every closed window to the sensor-aggregates topic"),
  allowed_lateness: Duration.optional().describe(
    "Late events within this margin still update their window (default 0)",
  ),
  // Lifecycle
  priority: Priority,
  for: Duration.default(0).describe("How long the condition must hold before the alert fires"),
  clear: JsonLogic.optional().describe(
    "A JSON-Logic condition that resolves the alert (default: not condition)",
  ),
  hysteresis: z.number().nonnegative().optional().describe(
    "Threshold rules: the value must come back this far inside the band to resolve",
  ),
  clear_for: Duration.default(0).describe("How long the clear condition must hold before the alert resolves"),
  repeat_interval: Duration.optional().describe("Re-notify while firing and not acknowledged"),
  notify_resolved: z.boolean().default(true),
  // At most 4,096 characters: finding the placeholders of 120,000 "{" took 4.1 s of the reload
  // (each position tried to the end), 4,096 take 5 ms; Slack shows 3,000 of a message.
  message: z.string().min(1).max(4096).optional().describe(
    "Template: {{sensor_id}}, {{value}}, {{unit}}, {{threshold}}, {{avg}} …",
  ),
  labels: z.record(z.string(), z.string()).default({}),
  // Noise control
  flapping: Flapping.optional().describe(
    "Past max_transitions within the window the alert is flapping: notified once, then nothing " +
      "until it has been stable for the window",
  ),
  escalate: z.array(EscalationStep).min(1).optional().describe(
    "Raise the priority of an alert still firing and not acknowledged after each step's time",
  ),
  max_notifications: MaxNotifications.optional().describe(
    "Storm guard: notifications beyond count per interval are held back and summed up in one",
  ),
}).superRefine((r, ctx) => {
  const kinds = [r.condition, r.threshold, r.limits, r.sequence, r.absent_for].filter((x) => x !== undefined)
    .length;
  if (kinds !== 1) {
    ctx.addIssue({
      code: "custom",
      message: 'needs exactly one of "condition", "threshold", "limits", "sequence" or "absent_for"',
    });
  }
  if (r.sequence !== undefined && r.window !== undefined) {
    ctx.addIssue({ code: "custom", path: ["window"], message: "a sequence rule cannot have a window" });
  }
  if (r.sequence !== undefined && r.clear !== undefined) {
    ctx.addIssue({
      code: "custom",
      path: ["clear"],
      message:
        'a sequence rule resolves on its own (`within` after a match, or when B comes): "clear" does not apply',
    });
  }
  if (r.limits !== undefined && r.window !== undefined) {
    ctx.addIssue({
      code: "custom",
      path: ["limits"],
      message: "per-sensor limits apply to each event: not to a window rule",
    });
  }
  if (r.absent_for !== undefined && r.window !== undefined) {
    ctx.addIssue({
      code: "custom",
      path: ["window"],
      message: 'a deadman rule ("absent_for") cannot have a window',
    });
  }
  if (r.hysteresis !== undefined && r.threshold === undefined && r.limits === undefined) {
    ctx.addIssue({
      code: "custom",
      path: ["hysteresis"],
      message: 'only applies to a "threshold" or "limits" rule',
    });
  }
  if (r.hysteresis !== undefined && r.clear !== undefined) {
    ctx.addIssue({
      code: "custom",
      path: ["clear"],
      message: 'use either "clear" or "hysteresis", not both',
    });
  }
  if (r.window === undefined) {
    if (r.group_by !== undefined && r.sequence === undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["group_by"],
        message: 'only applies to a rule with a "window" or a "sequence"',
      });
    }
    if (r.value_of !== undefined) {
      ctx.addIssue({ code: "custom", path: ["value_of"], message: 'only applies to a rule with a "window"' });
    }
    if (r.publish) {
      ctx.addIssue({ code: "custom", path: ["publish"], message: 'only applies to a rule with a "window"' });
    }
  }
  if (r.allowed_lateness !== undefined && r.window === undefined) {
    ctx.addIssue({
      code: "custom",
      path: ["allowed_lateness"],
      message: 'only applies to a rule with a "window"',
    });
  }
  if (r.startup_grace !== undefined && r.absent_for === undefined) {
    ctx.addIssue({
      code: "custom",
      path: ["startup_grace"],
      message: 'only applies to a deadman rule ("absent_for")',
    });
  }
  if (r.clear !== undefined && r.absent_for !== undefined) {
    ctx.addIssue({
      code: "custom",
      path: ["clear"],
      message: 'a deadman rule resolves when its sensor sends again: "clear" does not apply',
    });
  }
  if (r.repeat_interval !== undefined && durationMs(r.repeat_interval) <= 0) {
    ctx.addIssue({ code: "custom", path: ["repeat_interval"], message: "must be greater than zero" });
  }
  // At most a day: a storm interval past ~24.8 days overflowed its timer, which then fired at once
  // (no cap at all), and a flapping alert is not notified for up to its window.
  for (
    const [path, d] of [
      [["flapping", "window"], r.flapping?.window],
      [["max_notifications", "per"], r.max_notifications?.per],
    ] as const
  ) {
    if (d === undefined) continue;
    const ms = durationMs(d);
    if (ms <= 0) ctx.addIssue({ code: "custom", path: [...path], message: "must be greater than zero" });
    else if (ms > MAX_NOISE_WINDOW_MS) {
      ctx.addIssue({ code: "custom", path: [...path], message: "must be at most 1d" });
    }
  }
  let previous: { after: number; rank: number } = { after: 0, rank: PRIORITIES.indexOf(r.priority) };
  for (const [i, step] of (r.escalate ?? []).entries()) {
    const after = durationMs(step.after);
    const rank = PRIORITIES.indexOf(step.priority);
    if (after <= previous.after) {
      ctx.addIssue({
        code: "custom",
        path: ["escalate", i, "after"],
        message: i === 0 ? "must be greater than zero" : "must be later than the step before",
      });
    }
    if (rank <= previous.rank) {
      ctx.addIssue({
        code: "custom",
        path: ["escalate", i, "priority"],
        message: `"${step.priority}" does not raise ${
          i === 0 ? `the rule's priority "${r.priority}"` : `the step before's "${PRIORITIES[previous.rank]}"`
        }`,
      });
    }
    previous = { after: Math.max(after, previous.after), rank: Math.max(rank, previous.rank) };
  }
  const t = r.threshold;
  if (r.hysteresis !== undefined && t?.min !== undefined && t.max !== undefined) {
    if (t.min + r.hysteresis > t.max - r.hysteresis) {
      ctx.addIssue({
        code: "custom",
        path: ["hysteresis"],
        message: `${r.hysteresis} leaves no value inside ${t.min}..${t.max} to come back to ` +
          `(${t.min + r.hysteresis} > ${t.max - r.hysteresis}): the alert would never resolve`,
      });
    }
  }
  if (r.window?.type === "sliding") {
    const size = durationMs(r.window.size);
    const slide = durationMs(r.window.slide);
    // A slide under 1 ms left a window start near 1.7e12 as it was ("start -= slide"): the first
    // event never ended. Each event counts in size / slide windows: 10ms under 1h made 360,000 per
    // sensor, 32 s for its first event and 208 MB.
    if (!(slide >= 1)) {
      ctx.addIssue({ code: "custom", path: ["window", "slide"], message: "must be at least 1ms" });
    } else if (slide > size) {
      ctx.addIssue({ code: "custom", path: ["window", "slide"], message: 'must not exceed "size"' });
    } else if (Math.ceil(size / slide) > MAX_SLIDING_WINDOWS) {
      ctx.addIssue({
        code: "custom",
        path: ["window", "slide"],
        message: `puts each event in ${
          Math.ceil(size / slide)
        } windows ("size" / "slide"); at most ${MAX_SLIDING_WINDOWS}`,
      });
    }
  }
  if (r.window?.type !== undefined && r.window.type !== "count" && durationMs(r.window.size) <= 0) {
    ctx.addIssue({ code: "custom", path: ["window", "size"], message: "must be greater than zero" });
  }
});
export type Rule = z.infer<typeof Rule>;

/** The most windows a sliding window puts one event in (`size` / `slide`): 1h every 3.6s. */
export const MAX_SLIDING_WINDOWS = 1000;

/** Which alerts an inhibit rule's `source` or `target` names; every field given must match. */
export const AlertMatcher = z.strictObject({
  rule_id: OneOrMany(z.string().min(1)).optional(),
  priority: OneOrMany(Priority).optional(),
  sensor_type: OneOrMany(SensorType).optional(),
  sensor_id: OneOrMany(z.string().min(1)).optional().describe("'*' matches any run"),
  location: OneOrMany(z.string().min(1)).optional().describe("'*' matches any run"),
  labels: z.record(z.string(), z.string()).optional().describe("Labels the alert has, with these values"),
}).refine(
  (m) => Object.keys(m).length > 0,
  "needs at least one of rule_id, priority, sensor_type, sensor_id, location or labels",
);
export type AlertMatcher = z.infer<typeof AlertMatcher>;

export const INHIBIT_EQUAL_FIELDS = ["sensor_id", "sensor_type", "location", "rule_id", "group"] as const;

/** While an alert matching `source` fires, alerts matching `target` with the same `equal` values are not notified. */
export const Inhibition = z.strictObject({
  source: AlertMatcher.describe("The alerts that inhibit while they fire"),
  target: AlertMatcher.describe("The alerts they keep from being notified"),
  // The pattern first: a union reports its first alternative's complaint, and this one names them all.
  equal: z.array(z.union([
    z.string().regex(
      /^labels\.[A-Za-z0-9_.-]+$/,
      `must be ${INHIBIT_EQUAL_FIELDS.map((f) => `"${f}"`).join(", ")} or "labels.<key>"`,
    ),
    z.enum(INHIBIT_EQUAL_FIELDS),
  ])).default([]).describe("Fields the source and the target must agree on (e.g. location)"),
});
export type Inhibition = z.infer<typeof Inhibition>;

export const RuleFile = z.strictObject({
  rules: z.array(Rule).default([]),
  inhibit: z.array(Inhibition).default([]).describe(
    "Inhibition: alerts that keep others from being notified while they fire",
  ),
  limits: z.record(z.string().regex(LIMITS_NAME, "must be letters, digits, '.', '_' or '-'"), LimitTable)
    .default({}).describe("Per-sensor limits tables, by name (unique across files)"),
});
export type RuleFile = z.infer<typeof RuleFile>;
