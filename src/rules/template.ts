import { AGGREGATE_FUNCTIONS } from "./schema.ts";

/** Values every message template may use. */
const COMMON_FIELDS = [
  "sensor_id",
  "sensor_type",
  "value",
  "unit",
  "threshold",
  "location",
  "rule_id",
  "priority",
  "crossed",
  "timestamp",
  "state",
  "group",
] as const;

/** Values only some kinds of rule have; a placeholder for another kind would always print empty. */
const KIND_FIELDS = {
  // baseline, deviation, score: of the first anomaly operation of the condition (empty without one).
  event: ["event_id", "baseline", "deviation", "score"],
  window: ["window_start", "window_end", ...AGGREGATE_FUNCTIONS],
  deadman: ["absent_for", "last_seen"],
  sequence: ["event_id", "first_sensor_id", "first_value", "first_at", "within"],
} as const;

/** Every value a message template may use, for one kind of rule or another. */
export const TEMPLATE_FIELDS = [
  ...COMMON_FIELDS,
  ...KIND_FIELDS.event,
  ...KIND_FIELDS.window,
  ...KIND_FIELDS.deadman,
  ...KIND_FIELDS.sequence,
] as const;

export type TemplateKind = keyof typeof KIND_FIELDS;

/** The values a message template of this kind of rule may use (besides `metadata.<key>` in event rules). */
export function templateFields(kind: TemplateKind): readonly (typeof TEMPLATE_FIELDS)[number][] {
  return [...COMMON_FIELDS, ...KIND_FIELDS[kind]];
}

export type TemplateValues = Partial<Record<(typeof TEMPLATE_FIELDS)[number], unknown>> & {
  metadata?: Record<string, unknown>;
};

export type Template = (values: TemplateValues) => string;

/** Anything between double braces: a placeholder must be exactly `{{name}}`, else it would print verbatim. */
const BRACES = /\{\{(.*?)\}\}/g;
const NAME = /^\s*([A-Za-z0-9_.]+)\s*$/;

/**
 * Compiles `"{{sensor_id}} at {{value}} {{unit}}"` once per rule load. A placeholder the rule's kind
 * does not have (`{{avg}}` in an event rule), or that is not a plain name (`{{sensor-id}}`,
 * `{{ value | round }}`), fails with the list of the ones it may use.
 */
export function compileTemplate(
  text: string,
  fail: (path: (string | number)[], message: string) => never,
  kind: TemplateKind = "event",
): Template {
  const allowed: readonly string[] = templateFields(kind);
  const known = () =>
    `(known in a${kind === "event" ? "n" : ""} ${kind} rule: ${allowed.join(", ")}${
      kind === "event" ? ", metadata.<key>" : ""
    })`;
  const parts: (string | ((v: TemplateValues) => unknown))[] = [];
  let last = 0;
  for (const m of text.matchAll(BRACES)) {
    parts.push(text.slice(last, m.index));
    const name = NAME.exec(m[1]!)?.[1];
    if (name === undefined) {
      fail([], `Unknown placeholder "${m[0]}": a placeholder is a name in braces ${known()}`);
    }
    if (name.startsWith("metadata.") && kind === "event") {
      const key = name.slice("metadata.".length);
      parts.push((v) => v.metadata?.[key]);
    } else if (allowed.includes(name)) {
      const field = name as (typeof TEMPLATE_FIELDS)[number];
      parts.push((v) => v[field]);
    } else {
      const owner = (Object.keys(KIND_FIELDS) as TemplateKind[]).find((k) =>
        (KIND_FIELDS[k] as readonly string[]).includes(name) ||
        (k === "event" && name.startsWith("metadata."))
      );
      fail(
        [],
        owner === undefined
          ? `Unknown placeholder "{{${name}}}" ${known()}`
          : `Placeholder "{{${name}}}" only has a value in a${
            owner === "event" ? "n" : ""
          } ${owner} rule ${known()}`,
      );
    }
    last = m.index + m[0].length;
  }
  parts.push(text.slice(last));
  return (values) => {
    let out = "";
    for (const p of parts) out += typeof p === "string" ? p : formatValue(p(values));
    return out;
  };
}

/** Two decimals from 1 up; below that three significant digits, so 0.004 does not read as 0. */
function formatValue(v: unknown): string {
  if (v === undefined || v === null) return "";
  if (typeof v === "number") {
    if (Number.isInteger(v) || !Number.isFinite(v)) return String(v);
    return String(Math.abs(v) >= 1 ? Math.round(v * 100) / 100 : Number(v.toPrecision(3)));
  }
  return typeof v === "string" ? v : JSON.stringify(v);
}
