/**
 * The rule file format (`rules/*.yaml`). This zod schema is the single source: the loader validates
 * with it and `rules/rules.schema.json` is generated from it for editors.
 *
 * @module
 */
import { z } from "zod";
import { Priority, SensorType } from "../contract/schemas.ts";

/** `30s`, `5m`, `1h`, `250ms`, or a number of seconds. */
export const Duration = z.union([
  z.number().nonnegative(),
  z.string().regex(/^\d+(?:\.\d+)?(?:ms|s|m|h|d)$/, 'must be a duration like "30s", "5m", "1h" or "250ms"'),
]).describe('A duration: "250ms", "30s", "5m", "1h", "1d", or a number of seconds');
export type Duration = z.infer<typeof Duration>;

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

export function durationMs(d: Duration): number {
  if (typeof d === "number") return d * 1000;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(d);
  if (!m) throw new TypeError(`Cannot parse duration "${d}"`);
  return Number(m[1]) * UNIT_MS[m[2]!]!;
}

/** A JSON-Logic expression; its operations are checked by the compiler, not by this schema. */
export const JsonLogic = z.unknown().describe("A JSON-Logic expression (https://jsonlogic.com)");

const OneOrMany = <T extends z.ZodType>(t: T) => z.union([t, z.array(t).min(1)]);

export const Threshold = z.strictObject({
  min: z.number().optional().describe("Alert when the value is below this bound"),
  max: z.number().optional().describe("Alert when the value is above this bound"),
}).refine((t) => t.min !== undefined || t.max !== undefined, 'needs "min", "max" or both')
  .refine((t) => t.min === undefined || t.max === undefined || t.min <= t.max, '"min" must not exceed "max"');
export type Threshold = z.infer<typeof Threshold>;

export const Rule = z.strictObject({
  id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, "must be letters, digits, '.', '_' or '-'"),
  description: z.string().default(""),
  enabled: z.boolean().default(true),
  sensor_type: OneOrMany(SensorType).optional().describe("Only events of these sensor types"),
  sensor_id: OneOrMany(z.string().min(1)).optional().describe("Only these sensor ids; '*' matches any run"),
  location: OneOrMany(z.string().min(1)).optional().describe("Only these locations; '*' matches any run"),
  match: JsonLogic.optional().describe("A JSON-Logic selector over the event"),
  condition: JsonLogic.optional().describe("A JSON-Logic condition over the event; true raises the alert"),
  threshold: Threshold.optional(),
  priority: Priority,
  message: z.string().min(1).optional().describe(
    "Template: {{sensor_id}}, {{value}}, {{unit}}, {{threshold}} …",
  ),
  labels: z.record(z.string(), z.string()).default({}),
  notify_resolved: z.boolean().default(true),
}).refine((r) => (r.condition === undefined) !== (r.threshold === undefined), {
  message: 'needs exactly one of "condition" or "threshold"',
});
export type Rule = z.infer<typeof Rule>;

export const RuleFile = z.strictObject({
  rules: z.array(Rule).default([]),
});
export type RuleFile = z.infer<typeof RuleFile>;
