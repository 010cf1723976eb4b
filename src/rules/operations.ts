/**
 * The JSON-Logic operations a rule may use: json-logic-js's own (minus `method` and `log`, which
 * reach outside the expression) and ours. Registered once, in this file, so the checker and the
 * evaluator always agree.
 *
 * @module
 */
import jsonLogic from "json-logic-js";
import { ANOMALY_OPERATIONS } from "./anomaly.ts";

/** Minimum and maximum number of arguments; `Infinity` for variadic. */
export interface Arity {
  min: number;
  max: number;
}

const any = (min = 0): Arity => ({ min, max: Infinity });
const exactly = (n: number): Arity => ({ min: n, max: n });
const range = (min: number, max: number): Arity => ({ min, max });

const BUILT_IN: Record<string, Arity> = {
  "var": range(0, 2),
  "missing": any(),
  "missing_some": exactly(2),
  "if": any(1),
  "?:": exactly(3),
  "==": exactly(2),
  "===": exactly(2),
  "!=": exactly(2),
  "!==": exactly(2),
  "!": exactly(1),
  "!!": exactly(1),
  "or": any(1),
  "and": any(1),
  ">": exactly(2),
  ">=": exactly(2),
  "<": range(2, 3),
  "<=": range(2, 3),
  "max": any(1),
  "min": any(1),
  "+": any(1),
  "-": range(1, 2),
  "*": any(1),
  "/": exactly(2),
  "%": exactly(2),
  "map": exactly(2),
  "filter": exactly(2),
  "reduce": range(2, 3),
  "all": exactly(2),
  "none": exactly(2),
  "some": exactly(2),
  "merge": any(),
  "in": exactly(2),
  "cat": any(),
  "substr": range(2, 3),
};

interface CustomOperation {
  arity: Arity;
  fn: (...args: never[]) => unknown;
}

const CUSTOM: Record<string, CustomOperation> = {
  /** `{"between": [x, lo, hi]}`: lo <= x <= hi. */
  between: {
    arity: exactly(3),
    fn: (x: number, lo: number, hi: number) => x >= lo && x <= hi,
  },
  /** `{"abs": [x]}` */
  abs: { arity: exactly(1), fn: (x: number) => Math.abs(x) },
  /** `{"hour_of_day": [ts]}`: the UTC hour (0–23) of an ISO timestamp or epoch ms. */
  hour_of_day: {
    arity: exactly(1),
    fn: (ts: string | number) => {
      const d = new Date(typeof ts === "string" && !/(?:Z|[+-]\d\d:\d\d)$/i.test(ts) ? `${ts}Z` : ts);
      return Number.isNaN(d.getTime()) ? null : d.getUTCHours();
    },
  },
};

for (const [name, op] of Object.entries(CUSTOM)) {
  jsonLogic.add_operation(name, op.fn as (...args: unknown[]) => unknown);
}

/** The arity of every operation a rule may use, or undefined for an unknown one. */
export function operationArity(name: string): Arity | undefined {
  return Object.hasOwn(BUILT_IN, name)
    ? BUILT_IN[name]
    : Object.hasOwn(CUSTOM, name)
    ? CUSTOM[name]!.arity
    : Object.hasOwn(ANOMALY_OPERATIONS, name)
    // Stateful: compiled by the rule compiler with the rule's per-sensor state (src/rules/anomaly.ts).
    ? ANOMALY_OPERATIONS[name as keyof typeof ANOMALY_OPERATIONS]
    : undefined;
}

export function operationNames(): string[] {
  return [...Object.keys(BUILT_IN), ...Object.keys(CUSTOM), ...Object.keys(ANOMALY_OPERATIONS)].sort();
}

/** The function of one of our own operations (`between`, `abs`, `hour_of_day`), for compiled logic. */
export function customOperation(name: string): ((...args: unknown[]) => unknown) | undefined {
  return Object.hasOwn(CUSTOM, name) ? CUSTOM[name]!.fn as (...args: unknown[]) => unknown : undefined;
}

/** Evaluates an expression that the compiler has already checked. */
export function applyLogic(expr: unknown, data: unknown): unknown {
  return jsonLogic.apply(expr as Parameters<typeof jsonLogic.apply>[0], data);
}

export function truthy(v: unknown): boolean {
  return jsonLogic.truthy(v);
}
