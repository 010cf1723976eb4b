import type { SensorEvent } from "../contract/schemas.ts";
import { applyLogic, operationArity, truthy } from "./operations.ts";
import type { Rule, Threshold } from "./schema.ts";
import { compileTemplate, type Template } from "./template.ts";

/** Where a rule was written, for error messages and the API. */
export interface RuleSource {
  file: string;
  line: number;
  column: number;
}

/** Why a rule fired: the values it saw. */
export interface Verdict {
  threshold: number | null;
  /** Which bound of a threshold was crossed. */
  bound: "min" | "max" | null;
}

export interface CompiledRule {
  readonly rule: Rule;
  readonly source: RuleSource;
  /** A stable fingerprint of the definition: a reload keeps the state of rules whose hash did not change. */
  readonly hash: string;
  /** Sensor types the rule can match, or null for any; used to index rules. */
  readonly sensorTypes: ReadonlySet<string> | null;
  /** Exact sensor ids the rule can match (no wildcard), or null; used to index rules. */
  readonly sensorIds: ReadonlySet<string> | null;
  /** The JSON-Logic form of the condition (threshold sugar compiled), for display and testing. */
  readonly logic: unknown;
  /** True when the event is in the rule's scope (selectors other than the indexed ones). */
  selects(event: SensorEvent): boolean;
  /** The verdict when the condition holds for this event, else null. */
  test(event: SensorEvent): Verdict | null;
  readonly message: Template;
}

/** A rule that cannot be compiled; `path` locates the problem inside the rule (`condition.and.1.var`). */
export class RuleCompileError extends Error {
  readonly ruleId: string;
  readonly path: (string | number)[];
  constructor(ruleId: string, path: (string | number)[], message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "RuleCompileError";
    this.ruleId = ruleId;
    this.path = path;
  }
}

/** Fields of a SensorEvent a `var` may name; anything under `metadata.` is allowed. */
export const EVENT_FIELDS = [
  "event_id",
  "sensor_id",
  "sensor_type",
  "value",
  "unit",
  "timestamp",
  "location",
  "metadata",
  "schema_version",
] as const;

export function compileRule(rule: Rule, source: RuleSource): CompiledRule {
  const fail = (path: (string | number)[], message: string): never => {
    throw new RuleCompileError(rule.id, path, message);
  };
  if (rule.match !== undefined) checkLogic(rule.match, ["match"], EVENT_FIELDS, fail);
  if (rule.condition !== undefined) checkLogic(rule.condition, ["condition"], EVENT_FIELDS, fail);

  const types = rule.sensor_type === undefined ? null : new Set(toArray(rule.sensor_type));
  const idPatterns = rule.sensor_id === undefined ? null : toArray(rule.sensor_id);
  const exactIds = idPatterns !== null && idPatterns.every((p) => !p.includes("*"))
    ? new Set(idPatterns)
    : null;
  const idMatchers = idPatterns === null || exactIds !== null ? null : idPatterns.map(globToRegExp);
  const locMatchers = rule.location === undefined ? null : toArray(rule.location).map(globToRegExp);
  const match = rule.match;

  const selects = (event: SensorEvent): boolean => {
    if (idMatchers !== null && !idMatchers.some((re) => re.test(event.sensor_id))) return false;
    if (locMatchers !== null) {
      const loc = event.location ?? "";
      if (!locMatchers.some((re) => re.test(loc))) return false;
    }
    return match === undefined || truthy(applyLogic(match, event));
  };

  let test: (event: SensorEvent) => Verdict | null;
  let logic: unknown;
  if (rule.threshold !== undefined) {
    test = thresholdTest(rule.threshold);
    logic = thresholdLogic(rule.threshold);
  } else {
    const condition = rule.condition;
    const noThreshold: Verdict = { threshold: null, bound: null };
    test = (event) => truthy(applyLogic(condition, event)) ? noThreshold : null;
    logic = condition;
  }

  const message = compileTemplate(
    rule.message ?? defaultMessage(rule),
    (path, msg) => fail(["message", ...path], msg),
  );

  return {
    rule,
    source,
    hash: stableStringify(rule),
    sensorTypes: types,
    sensorIds: exactIds,
    logic,
    selects,
    test,
    message,
  };
}

function defaultMessage(rule: Rule): string {
  if (rule.threshold !== undefined) {
    return "{{sensor_type}} sensor {{sensor_id}}: value {{value}} {{unit}} {{crossed}}";
  }
  return `{{sensor_type}} sensor {{sensor_id}}: value {{value}} {{unit}} matched rule "${rule.id}"`;
}

function thresholdTest(t: Threshold): (event: SensorEvent) => Verdict | null {
  const { min, max } = t;
  const below: Verdict | null = min === undefined ? null : { threshold: min, bound: "min" };
  const above: Verdict | null = max === undefined ? null : { threshold: max, bound: "max" };
  return (event) => {
    if (below !== null && event.value < below.threshold!) return below;
    if (above !== null && event.value > above.threshold!) return above;
    return null;
  };
}

/** The JSON-Logic equivalent of a threshold, evaluated natively for speed (see the differential test). */
export function thresholdLogic(t: Threshold): unknown {
  const parts: unknown[] = [];
  if (t.min !== undefined) parts.push({ "<": [{ "var": "value" }, t.min] });
  if (t.max !== undefined) parts.push({ ">": [{ "var": "value" }, t.max] });
  return parts.length === 1 ? parts[0] : { "or": parts };
}

/**
 * Checks every operation, its number of arguments and every `var` path, so a typo fails at load
 * time with the rule and the path inside the expression, never at evaluation time.
 */
export function checkLogic(
  expr: unknown,
  path: (string | number)[],
  fields: readonly string[],
  fail: (path: (string | number)[], message: string) => never,
): void {
  if (Array.isArray(expr)) {
    expr.forEach((e, i) => checkLogic(e, [...path, i], fields, fail));
    return;
  }
  if (expr === null || typeof expr !== "object") return;
  const keys = Object.keys(expr);
  if (keys.length !== 1) {
    fail(
      path,
      `An operation must be an object with exactly one key, got ${keys.length} (${keys.join(", ")})`,
    );
  }
  const op = keys[0]!;
  const arity = operationArity(op);
  if (arity === undefined) fail([...path, op], `Unknown JSON-Logic operation "${op}"`);
  const raw = (expr as Record<string, unknown>)[op];
  const args = Array.isArray(raw) ? raw : [raw];
  if (args.length < arity!.min || args.length > arity!.max) {
    const expected = arity!.min === arity!.max
      ? `${arity!.min}`
      : arity!.max === Infinity
      ? `at least ${arity!.min}`
      : `${arity!.min} to ${arity!.max}`;
    fail([...path, op], `Operation "${op}" takes ${expected} argument(s), got ${args.length}`);
  }
  if (op === "var") {
    const name = args[0];
    if (typeof name === "string" && name !== "") checkVar(name, [...path, op], fields, fail);
    if (args.length > 1) checkLogic(args[1], [...path, op, 1], fields, fail);
    return;
  }
  // Inside map/filter/all/none/some/reduce the second argument runs over array items, whose shape we don't know.
  if (["map", "filter", "all", "none", "some", "reduce"].includes(op)) {
    checkLogic(args[0], [...path, op, 0], fields, fail);
    for (let i = 2; i < args.length; i++) checkLogic(args[i], [...path, op, i], fields, fail);
    return;
  }
  args.forEach((a, i) => checkLogic(a, Array.isArray(raw) ? [...path, op, i] : [...path, op], fields, fail));
}

function checkVar(
  name: string,
  path: (string | number)[],
  fields: readonly string[],
  fail: (path: (string | number)[], message: string) => never,
): void {
  const head = name.split(".")[0]!;
  if (!fields.includes(head)) {
    fail(path, `Unknown field "${name}" in "var" (known: ${fields.join(", ")})`);
  }
}

function toArray<T>(v: T | T[]): T[] {
  return Array.isArray(v) ? v : [v];
}

/** `temp-*` → /^temp-.*$/; only `*` is special. */
export function globToRegExp(glob: string): RegExp {
  const escaped = glob.split("*").map((s) => s.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join(".*");
  return new RegExp(`^${escaped}$`);
}

/** JSON with sorted keys, so the same definition always gives the same hash. */
export function stableStringify(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableStringify).join(",")}]`;
  if (v !== null && typeof v === "object") {
    const entries = Object.keys(v).sort().map((k) =>
      `${JSON.stringify(k)}:${stableStringify((v as Record<string, unknown>)[k])}`
    );
    return `{${entries.join(",")}}`;
  }
  return JSON.stringify(v) ?? "null";
}
