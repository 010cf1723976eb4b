import { AGGREGATE_FUNCTIONS } from "./schema.ts";

/** Values a message template may use; a placeholder outside this list fails when the rule loads. */
export const TEMPLATE_FIELDS = [
  "sensor_id",
  "sensor_type",
  "value",
  "unit",
  "threshold",
  "location",
  "rule_id",
  "priority",
  "crossed",
  "event_id",
  "timestamp",
  "state",
  "absent_for",
  "last_seen",
  // Window rules
  "group",
  "window_start",
  "window_end",
  ...AGGREGATE_FUNCTIONS,
] as const;

export type TemplateValues = Partial<Record<(typeof TEMPLATE_FIELDS)[number], unknown>> & {
  metadata?: Record<string, unknown>;
};

export type Template = (values: TemplateValues) => string;

const PLACEHOLDER = /\{\{\s*([A-Za-z0-9_.]+)\s*\}\}/g;

/** Compiles `"{{sensor_id}} at {{value}} {{unit}}"` once per rule load. */
export function compileTemplate(
  text: string,
  fail: (path: (string | number)[], message: string) => never,
): Template {
  const parts: (string | ((v: TemplateValues) => unknown))[] = [];
  let last = 0;
  for (const m of text.matchAll(PLACEHOLDER)) {
    parts.push(text.slice(last, m.index));
    const name = m[1]!;
    if (name.startsWith("metadata.")) {
      const key = name.slice("metadata.".length);
      parts.push((v) => v.metadata?.[key]);
    } else if ((TEMPLATE_FIELDS as readonly string[]).includes(name)) {
      const field = name as (typeof TEMPLATE_FIELDS)[number];
      parts.push((v) => v[field]);
    } else {
      fail([], `Unknown placeholder "{{${name}}}" (known: ${TEMPLATE_FIELDS.join(", ")}, metadata.<key>)`);
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

function formatValue(v: unknown): string {
  if (v === undefined || v === null) return "";
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : String(Math.round(v * 100) / 100);
  return typeof v === "string" ? v : JSON.stringify(v);
}
