/**
 * JSON-Logic compiled into closures: the operations rules use most, with json-logic-js's exact
 * semantics (loose `==`, `parseFloat` in `+` and `*`, `var` defaults, short-circuit `and`/`or`/`if`);
 * any other operation runs through json-logic-js itself. The differential test holds the two together.
 *
 * @module
 */
import { applyLogic, customOperation } from "./operations.ts";

/** A compiled expression: the data in, what json-logic-js's `apply` would return out. */
export type LogicFn = (data: unknown) => unknown;

/**
 * Compiles the operations the rule compiler handles itself (the stateful anomaly operations): a
 * function for such an operation, or null for any other.
 */
export type OperationHook = (op: string, args: unknown[]) => LogicFn | null;

/** Compiles an expression that `checkLogic` accepted. */
export function compileLogic(expr: unknown, hook?: OperationHook): LogicFn {
  if (Array.isArray(expr)) {
    const items = expr.map((e) => compileLogic(e, hook));
    // A fresh array per call, as json-logic-js maps one: an expression's arrays are never shared.
    return (d) => items.map((f) => f(d));
  }
  if (!_isLogic(expr)) return () => expr;
  const op = Object.keys(expr)[0]!;
  const raw = (expr as Record<string, unknown>)[op];
  const values = Array.isArray(raw) ? raw : [raw];
  return hook?.(op, values) ?? _compileOperation(op, values, hook) ?? ((d) => applyLogic(expr, d));
}

/** json-logic-js's truthiness: an empty array is false. */
export function logicTruthy(v: unknown): boolean {
  return Array.isArray(v) ? v.length > 0 : !!v;
}

function _isLogic(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v) && Object.keys(v).length === 1;
}

/** `parseFloat` as json-logic-js applies it to `+` and `*` operands, without a string round trip for numbers. */
function _float(v: unknown): number {
  return typeof v === "number" ? (v === 0 ? 0 : v) : parseFloat(v as string);
}

function _compileOperation(op: string, values: unknown[], hook?: OperationHook): LogicFn | null {
  if (op === "var") return _compileVar(values);
  const args = values.map((v) => compileLogic(v, hook));
  const n = args.length;
  const [a = () => undefined, b = () => undefined, c = () => undefined] = args;
  switch (op) {
    case "if":
    case "?:":
      return (d) => {
        let i = 0;
        for (; i < n - 1; i += 2) if (logicTruthy(args[i]!(d))) return args[i + 1]!(d);
        return n === i + 1 ? args[i]!(d) : null;
      };
    case "and":
      return (d) => {
        let current: unknown;
        for (let i = 0; i < n; i++) {
          current = args[i]!(d);
          if (!logicTruthy(current)) return current;
        }
        return current;
      };
    case "or":
      return (d) => {
        let current: unknown;
        for (let i = 0; i < n; i++) {
          current = args[i]!(d);
          if (logicTruthy(current)) return current;
        }
        return current;
      };
  }
  // Everything below evaluates every argument first, in order, as json-logic-js does. Argument counts
  // other than the checker allows run through json-logic-js.
  const binary = (f: (x: unknown, y: unknown) => unknown): LogicFn | null =>
    n === 2 ? (d) => f(a(d), b(d)) : null;
  switch (op) {
    case "==":
      return binary((x, y) => x == y);
    case "===":
      return binary((x, y) => x === y);
    case "!=":
      return binary((x, y) => x != y);
    case "!==":
      return binary((x, y) => x !== y);
    case ">":
      return binary((x, y) => (x as number) > (y as number));
    case ">=":
      return binary((x, y) => (x as number) >= (y as number));
    case "%":
      return binary((x, y) => (x as number) % (y as number));
    case "/":
      return binary((x, y) => (x as number) / (y as number));
    case "in":
      return binary((x, y) => {
        if (!y || typeof (y as { indexOf?: unknown }).indexOf === "undefined") return false;
        return (y as { indexOf(v: unknown): number }).indexOf(x) !== -1;
      });
    case "<":
    case "<=": {
      if (n !== 2 && n !== 3) return null;
      const lt = op === "<";
      return (d) => {
        const x = a(d) as number, y = b(d) as number, z = (n > 2 ? c(d) : undefined) as number | undefined;
        return z === undefined ? (lt ? x < y : x <= y) : lt ? x < y && y < z : x <= y && y <= z;
      };
    }
    case "!":
      return n === 1 ? (d) => !logicTruthy(a(d)) : null;
    case "!!":
      return n === 1 ? (d) => logicTruthy(a(d)) : null;
    case "-":
      if (n === 1) return (d) => -(a(d) as number);
      return binary((x, y) => y === undefined ? -(x as number) : (x as number) - (y as number));
    case "+":
      return (d) => {
        let acc: unknown = 0;
        for (let i = 0; i < n; i++) acc = _float(acc) + _float(args[i]!(d));
        return acc;
      };
    case "*":
      if (n === 0) return null;
      return (d) => {
        let acc = args[0]!(d);
        for (let i = 1; i < n; i++) acc = _float(acc) * _float(args[i]!(d));
        return acc;
      };
    case "min":
      return (d) => Math.min(...args.map((f) => f(d)) as number[]);
    case "max":
      return (d) => Math.max(...args.map((f) => f(d)) as number[]);
  }
  const custom = customOperation(op);
  if (custom !== undefined) return (d) => custom.apply(d, args.map((f) => f(d)));
  return null;
}

function _compileVar(values: unknown[]): LogicFn | null {
  const name = values[0];
  if (values.length > 2 || (name !== null && name !== undefined && typeof name === "object")) return null;
  const fallback = values.length > 1 ? compileLogic(values[1]) : () => undefined;
  if (name === undefined || name === "" || name === null) {
    return (d) => {
      fallback(d);
      return d;
    };
  }
  const path = String(name).split(".");
  if (path.length === 1) {
    const k = path[0]!;
    return (d) => {
      const b = fallback(d);
      const notFound = b === undefined ? null : b;
      if (d === null || d === undefined) return notFound;
      const v = (d as Record<string, unknown>)[k];
      return v === undefined ? notFound : v;
    };
  }
  return (d) => {
    const b = fallback(d);
    const notFound = b === undefined ? null : b;
    let v = d;
    for (const k of path) {
      if (v === null || v === undefined) return notFound;
      v = (v as Record<string, unknown>)[k];
      if (v === undefined) return notFound;
    }
    return v;
  };
}
