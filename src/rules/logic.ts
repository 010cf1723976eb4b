/**
 * JSON-Logic compiled into closures, with json-logic-js 2.0.5's exact semantics (loose `==`,
 * `parseFloat` in `+` and `*`, `var` defaults, short-circuit `and`/`or`/`if`, `map`/`filter`/`reduce`/
 * `all`/`none`/`some` over arrays only). The remaining operations (`merge`, `cat`, `substr`, ...) run
 * json-logic-js's own function on arguments our closures evaluated, so no part of an expression runs in
 * json-logic-js's interpreter, whose `reduce` has no bound. The differential test
 * (tests/rules/logic_test.ts) holds the two together.
 *
 * What `reduce`, `map`, `merge` and `cat` build is bounded by `LOGIC_BUDGET`: the number of a `reduce`'s
 * steps is chosen by the event (an array in metadata, up to 256 entries), and a body that doubles its
 * accumulator made 64 items 2^64 (V8 heap OOM, the record read again after every restart), see
 * tests/rules/logic_bounds_test.ts.
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

/**
 * Items (through nested arrays) or characters that one `reduce` accumulator, `map` or `merge` result,
 * or `cat` result may hold. Weighing stops once past it, so a DAG (`[acc, acc]` doubles its leaves at
 * each step while costing one array) is weighed in at most this many steps.
 */
export const LOGIC_BUDGET = 1_000_000;
const _BUDGET_TEXT = LOGIC_BUDGET.toLocaleString("en-US");

/**
 * Array weights already taken. Compiled logic never mutates an array once built (json-logic-js's
 * operations build new ones, and the event's are only read), so a weight stays true; a reduce that
 * passes its accumulator on, or nests it (`[acc, current]`), weighs only what the step added.
 */
const _weights = new WeakMap<readonly unknown[], number>();

/**
 * A string's length; an array's items plus, recursively, its nested arrays' and strings' weights;
 * 0 for anything else. Past `LOGIC_BUDGET` the walk stops and says `LOGIC_BUDGET + 1`.
 */
export function logicWeight(v: unknown): number {
  if (typeof v === "string") return v.length;
  return Array.isArray(v) ? _weighArray(v) : 0;
}

function _weighArray(a: readonly unknown[]): number {
  const known = _weights.get(a);
  if (known !== undefined) return known;
  let w = a.length;
  for (let i = 0; i < a.length && w <= LOGIC_BUDGET; i++) {
    const x = a[i];
    if (typeof x === "string") w += x.length;
    else if (Array.isArray(x)) w += _weighArray(x);
  }
  w = Math.min(w, LOGIC_BUDGET + 1);
  _weights.set(a, w);
  return w;
}

/** What an operation throws past `LOGIC_BUDGET`; a `reduce` prefixes the step it was in. */
export class LogicBoundError extends RangeError {
  override name = "LogicBoundError";
}

/** What a loop throws once the deadline of `withLogicDeadline` has passed. */
export class LogicDeadlineError extends LogicBoundError {
  override name = "LogicDeadlineError";
}

/**
 * The `performance.now()` past which the loops (`map`, `filter`, `reduce`, `all`, `none`, `some`,
 * `missing`), and every operation of an expression compiled under `compileWithDeadlineChecks`, stop;
 * Infinity (the engine's own rules) costs the loops one comparison per item. The budget bounds what an
 * operation builds, not how long it runs: three nested `all` over a literal list of 200 items (a 1.2 KB
 * condition) are 8 million steps per event, 0.24 s; of 1,000 items (6 KB), ~16 s per event. Nor does a
 * loop's step bound it: a value weighed within the budget can be a DAG of 131,072 leaves (a `reduce` of
 * 17 steps doubling `[acc, acc]`), and each `+` or `==` over it turns it into text, ~45 ms: 300 of them
 * (32 KB of condition) were 13.4 s for one event, without a loop in between.
 */
let _deadline = Infinity;
let _expired = false;
/** Set while `compileWithDeadlineChecks` compiles: every operation then counts as a step. */
let _instrument = false;

function _tick(): void {
  if (_deadline === Infinity) return;
  // The clock at every step (~30 ns): a step can cost tens of ms, so reading it every 64 let 64 pass.
  // Once past, every step fails at once: the rest of the what-if's chunk costs nothing more.
  if (_expired || performance.now() > _deadline) {
    _expired = true;
    throw new LogicDeadlineError("stopped: the evaluation ran past its time limit");
  }
}

/**
 * Runs `compile` (a rule file's parse, say) with every operation it compiles counting as a step of
 * `withLogicDeadline`, and the values an operation takes all at once (an array written in the
 * expression, the arguments of `min`, `max` and json-logic-js's operations) weighed against
 * `LOGIC_BUDGET`: for the what-if's rules only, not the engine's. A step is then at most one
 * operation over values of the budget's weight: `[{"var": ""}, ...]` inside a `map` over such a DAG
 * was an array of 20 references (342 bytes of condition) that one `+` turned into text for 1.0 s, of
 * 2,000 for ~90 s.
 */
export function compileWithDeadlineChecks<T>(compile: () => T): T {
  const before = _instrument;
  _instrument = true;
  try {
    return compile();
  } finally {
    _instrument = before;
  }
}

/**
 * Runs `run` (synchronous: nothing else evaluates logic meanwhile) with loops that throw a
 * `LogicDeadlineError` past `deadline` (a `performance.now()` value); the rule fails for that event
 * as for any error. Says whether the deadline stopped a loop.
 */
export function withLogicDeadline(deadline: number, run: () => void): boolean {
  const before = { deadline: _deadline, expired: _expired };
  _deadline = Math.min(deadline, _deadline);
  _expired = false;
  try {
    run();
    return _expired;
  } finally {
    _deadline = before.deadline;
    _expired ||= before.expired;
  }
}

function _overBudget(what: string, where: string): LogicBoundError {
  return new LogicBoundError(`${what} grew past ${_BUDGET_TEXT} items or characters ${where}`);
}

/** Compiles an expression that `checkLogic` accepted. */
export function compileLogic(expr: unknown, hook?: OperationHook): LogicFn {
  if (Array.isArray(expr)) {
    const items = expr.map((e) => compileLogic(e, hook));
    // A fresh array per call, as json-logic-js maps one: an expression's arrays are never shared.
    if (!_instrument) return (d) => items.map((f) => f(d));
    return (d) => _weighed(items.map((f) => f(d)), "an array");
  }
  if (!_isLogic(expr)) return () => expr;
  const op = Object.keys(expr)[0]!;
  const raw = (expr as Record<string, unknown>)[op];
  const values = Array.isArray(raw) ? raw : [raw];
  const fn = hook?.(op, values) ?? _compileOperation(op, values, hook) ?? _compileLibrary(op, values);
  if (!_instrument) return fn;
  return (d) => {
    _tick();
    return fn(d);
  };
}

/**
 * json-logic-js's function for `op` on arguments our closures evaluated: they reach it through the
 * data (`{"var": "0"}` is the first), so json-logic-js neither interprets them as logic again nor
 * evaluates a nested operation itself. Only for operations that do not read the data (`var`, `missing`
 * and `missing_some` are compiled); an unknown operation throws json-logic-js's error.
 */
function _compileLibrary(op: string, values: unknown[]): LogicFn {
  const args = values.map((v) => compileLogic(v));
  const call = { [op]: values.map((_, i) => ({ var: String(i) })) };
  if (!_instrument) return (d) => applyLogic(call, args.map((f) => f(d)));
  return (d) => applyLogic(call, _weighed(args.map((f) => f(d)), `the arguments of "${op}"`));
}

/** `vs`, or a LogicBoundError when they weigh more than `LOGIC_BUDGET` together. */
function _weighed(vs: unknown[], what: string): unknown[] {
  let w = vs.length;
  for (let i = 0; i < vs.length && w <= LOGIC_BUDGET; i++) w += logicWeight(vs[i]);
  if (w > LOGIC_BUDGET) throw _overBudget(what, "(weighed before use)");
  return vs;
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
  const scoped = _compileScoped(op, values);
  if (scoped !== null) return scoped;
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
    case "max": {
      const f = op === "min" ? Math.min : Math.max;
      if (!_instrument) return (d) => f(...args.map((g) => g(d)) as number[]);
      return (d) => f(..._weighed(args.map((g) => g(d)), `the arguments of "${op}"`) as number[]);
    }
  }
  const custom = customOperation(op);
  if (custom !== undefined) return (d) => custom.apply(d, args.map((f) => f(d)));
  return null;
}

const _SCOPED = new Set([
  "map",
  "filter",
  "reduce",
  "all",
  "none",
  "some",
  "merge",
  "cat",
  "missing",
  "missing_some",
]);

/**
 * `map`, `filter`, `reduce`, `all`, `none`, `some` (their second argument runs on each item, or on
 * `{current, accumulator}`), and the operations json-logic-js runs whose result is bounded here
 * (`merge`, `cat`) or that read the data (`missing`, `missing_some`). Compiled without the rule's
 * hook: the checker refuses anomaly operations inside them, and json-logic-js ran them without it.
 */
function _compileScoped(op: string, values: unknown[]): LogicFn | null {
  if (!_SCOPED.has(op)) return null;
  const args = values.map((v) => compileLogic(v));
  const [list = () => undefined, body = () => undefined] = args;
  switch (op) {
    case "map":
      return (d) => {
        const items = list(d);
        if (!Array.isArray(items)) return [];
        const out: unknown[] = [];
        let w = 0;
        for (let i = 0; i < items.length; i++) {
          _tick();
          const v = body(items[i]);
          out.push(v);
          w += 1 + logicWeight(v);
          if (w > LOGIC_BUDGET) throw _overBudget("map: the result", `at item ${i + 1}`);
        }
        _weights.set(out, w);
        return out;
      };
    case "filter":
      return (d) => {
        const items = list(d);
        return Array.isArray(items)
          ? items.filter((x) => {
            _tick();
            return logicTruthy(body(x));
          })
          : [];
      };
    case "reduce": {
      const initial = values[2] !== undefined ? args[2]! : () => null;
      return (d) => {
        const items = list(d);
        let acc = initial(d);
        if (!Array.isArray(items)) return acc;
        for (let i = 0; i < items.length; i++) {
          _tick();
          try {
            acc = body({ current: items[i], accumulator: acc });
          } catch (err) {
            if (err instanceof LogicBoundError) err.message = `reduce: step ${i + 1}: ${err.message}`;
            throw err;
          }
          // A body can at most multiply its accumulator by its own size per step, so weighing each
          // step stops a doubling at ~20 steps (2^20 > 1,000,000) instead of 2^(number of items).
          if (logicWeight(acc) > LOGIC_BUDGET) {
            throw _overBudget("reduce: the accumulator", `after step ${i + 1}`);
          }
        }
        return acc;
      };
    }
    case "all":
      return (d) => {
        const items = list(d);
        if (!Array.isArray(items) || items.length === 0) return false;
        for (let i = 0; i < items.length; i++) {
          _tick();
          if (!logicTruthy(body(items[i]))) return false;
        }
        return true;
      };
    case "none":
    case "some": {
      // json-logic-js 2.0.5 loops with a short circuit (later versions go through `filter`).
      const some = op === "some";
      return (d) => {
        const items = list(d);
        if (!Array.isArray(items)) return !some;
        for (let i = 0; i < items.length; i++) {
          _tick();
          if (logicTruthy(body(items[i]))) return some;
        }
        return !some;
      };
    }
    case "merge": {
      const merge = _compileLibrary(op, values);
      return (d) => {
        const out = merge(d);
        if (logicWeight(out) > LOGIC_BUDGET) {
          throw _overBudget(
            "merge: the result",
            `(${(out as unknown[]).length.toLocaleString("en-US")} items)`,
          );
        }
        return out;
      };
    }
    case "cat": {
      const call = { cat: values.map((_, i) => ({ var: String(i) })) };
      return (d) => {
        const vs = args.map((f) => f(d));
        // Weighed before joining: an array's string walks every leaf of a DAG, however few its arrays.
        let w = 0;
        for (const v of vs) w += logicWeight(v);
        if (w > LOGIC_BUDGET) throw _overBudget("cat: the arguments", "before joining");
        const out = applyLogic(call, vs) as string;
        if (out.length > LOGIC_BUDGET) {
          throw _overBudget("cat: the result", `(${out.length.toLocaleString("en-US")} characters)`);
        }
        return out;
      };
    }
    case "missing":
      return (d) => _missing(d, args.map((f) => f(d)));
    case "missing_some":
      return (d) => {
        const need = list(d), options = body(d) as { length: number };
        // json-logic-js applies `{"missing": options}` to the data: each option is evaluated as logic.
        const missing = _missing(
          d,
          (Array.isArray(options) ? options : [options]).map((o) => _applyData(o, d)),
        );
        return options.length - missing.length >= (need as number) ? [] : missing;
      };
  }
  return null;
}

/**
 * json-logic-js's `missing` with `this` the data: the keys are the first argument if it is an array,
 * else the arguments; a key is missing when `{"var": key}` gives null or "".
 */
function _missing(d: unknown, args: unknown[]): unknown[] {
  const keys = Array.isArray(args[0]) ? args[0] as unknown[] : args;
  const missing: unknown[] = [];
  for (let i = 0; i < keys.length; i++) {
    _tick();
    const key = keys[i];
    const value = _applyVar(key, d);
    if (value === null || value === "") missing.push(key);
  }
  return missing;
}

/**
 * `jsonLogic.apply({"var": key}, d)` for a key computed at run time (`missing`'s keys may come from
 * the event): the key's items are evaluated as logic, by our closures so a `reduce` in them is bounded.
 */
function _applyVar(key: unknown, d: unknown): unknown {
  if (!Array.isArray(key)) return _lookup(d, _applyData(key, d), undefined);
  const vs = key.map((k) => _applyData(k, d));
  return _lookup(d, vs[0], vs[1]);
}

/** `jsonLogic.apply(v, d)` for a value from the data: compiled only when it is an array or an object. */
function _applyData(v: unknown, d: unknown): unknown {
  return v !== null && typeof v === "object" ? compileLogic(v)(d) : v;
}

/** json-logic-js's `var` on evaluated arguments. */
function _lookup(data: unknown, name: unknown, fallback: unknown): unknown {
  const notFound = fallback === undefined ? null : fallback;
  if (name === undefined || name === "" || name === null) return data;
  let v = data;
  for (const k of String(name).split(".")) {
    if (v === null || v === undefined) return notFound;
    v = (v as Record<string, unknown>)[k];
    if (v === undefined) return notFound;
  }
  return v;
}

function _compileVar(values: unknown[]): LogicFn | null {
  const name = values[0];
  if (values.length > 2 || (name !== null && name !== undefined && typeof name === "object")) {
    // A computed name: every argument is evaluated, as json-logic-js does, then looked up.
    const args = values.map((v) => compileLogic(v));
    return (d) => {
      const vs = args.map((f) => f(d));
      return _lookup(d, vs[0], vs[1]);
    };
  }
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
