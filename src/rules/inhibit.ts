/**
 * Inhibit rules (`inhibit:` in a rule file), compiled to the three functions the notifier stage
 * applies: does an alert match the source, the target, and what are its `equal` values.
 *
 * @module
 */
import type { SensorAlert } from "../contract/schemas.ts";
import { globToRegExp, type RuleSource } from "./compile.ts";
import type { AlertMatcher, Inhibition } from "./schema.ts";

/** The fields of an alert an inhibit rule reads. */
export type InhibitedAlert = Pick<
  SensorAlert,
  "alert_id" | "rule_id" | "priority" | "sensor_type" | "sensor_id" | "location" | "labels" | "group"
>;

export interface CompiledInhibition {
  readonly inhibition: Inhibition;
  /** Where the inhibit rule was written. */
  readonly source_location: RuleSource;
  source(alert: InhibitedAlert): boolean;
  target(alert: InhibitedAlert): boolean;
  /** The alert's `equal` values as one key: a source inhibits the targets with the same key. */
  key(alert: InhibitedAlert): string;
}

export function compileInhibition(inhibition: Inhibition, at: RuleSource): CompiledInhibition {
  const fields = inhibition.equal.map((f): (a: InhibitedAlert) => unknown =>
    f.startsWith("labels.")
      ? (a) => a.labels?.[f.slice("labels.".length)]
      : (a) => (a as unknown as Record<string, unknown>)[f]
  );
  return {
    inhibition,
    source_location: at,
    source: matcher(inhibition.source),
    target: matcher(inhibition.target),
    // JSON of the values: a missing one (undefined → null) never equals a present string.
    key: (a) => JSON.stringify(fields.map((f) => f(a) ?? null)),
  };
}

function matcher(m: AlertMatcher): (a: InhibitedAlert) => boolean {
  const list = <T>(v: T | T[] | undefined): T[] | null => v === undefined ? null : Array.isArray(v) ? v : [v];
  const ruleIds = list(m.rule_id);
  const priorities = list(m.priority);
  const types = list(m.sensor_type);
  const ids = list(m.sensor_id)?.map(globToRegExp) ?? null;
  const locations = list(m.location)?.map(globToRegExp) ?? null;
  const labels = Object.entries(m.labels ?? {});
  return (a) =>
    (ruleIds === null || ruleIds.includes(a.rule_id)) &&
    (priorities === null || priorities.includes(a.priority)) &&
    (types === null || types.includes(a.sensor_type)) &&
    (ids === null || ids.some((re) => re.test(a.sensor_id))) &&
    (locations === null || locations.some((re) => re.test(a.location ?? ""))) &&
    labels.every(([k, v]) => a.labels?.[k] === v);
}
