/**
 * A silence's matchers, compiled once when the silence is read: Alertmanager's four kinds (`=`, `!=`,
 * `=~`, `!~`) over an alert's rule, sensor, type, location, priority and labels. An equality value may
 * hold the wildcards `*` (any run of characters) and `?` (one character), e.g. `temp-*`.
 *
 * Regexes come from whoever may write silences and run against every alert: they are RE2 (re2js, linear
 * time in the input, no backreferences or lookaround), anchored at both ends as in Alertmanager, and
 * at most `MAX_MATCHER_VALUE` characters. `(a+)+b` against 5,000 `a`s took 1.7 ms with re2js; the
 * built-in RegExp backtracks for longer than anyone waits.
 *
 * @module
 */
import { RE2JS } from "re2js";
import type { SensorAlert } from "./schemas.ts";

/** An alert's fields a matcher may name; any other name is `labels.<label>`. */
export const MATCHER_FIELDS = ["rule_id", "sensor_id", "sensor_type", "location", "priority"] as const;

/** Longest matcher value (a regex or a glob). */
export const MAX_MATCHER_VALUE = 256;

/**
 * Largest compiled regex (RE2's program size, its measure of cost). Matching time grows with it and
 * every alert runs every silence's regexes: `(\pL|\pN|\pS){1000}` is 19 characters and 3,002
 * instructions, 0.7 ms per 128-character sensor id (1,000 such silences: 0.7 s per alert), while the
 * usual ones are small (`[a-z0-9-]{1,64}`: 129, `(co2|temp)-[0-9]+`: 15).
 */
export const MAX_REGEX_PROGRAM = 512;

/** A matcher as written: Alertmanager's shape in snake_case. */
export interface MatcherSpec {
  name: string;
  value: string;
  is_regex: boolean;
  is_equal: boolean;
}

export interface Matcher extends MatcherSpec {
  /** True when the alert's value of `name` satisfies the matcher. */
  test(alert: SensorAlert): boolean;
  /** True when the matcher holds for an alert that lacks the field (its value read as ""). */
  matchesEmpty: boolean;
}

/** Why a matcher cannot be compiled; `field` is "name" or "value". */
export class MatcherError extends TypeError {
  override name = "MatcherError";
  constructor(message: string, readonly field: "name" | "value", options?: ErrorOptions) {
    super(message, options);
  }
}

const LABEL = /^labels\.[A-Za-z_][A-Za-z0-9_.-]{0,63}$/;

/** Compiles one matcher; throws a MatcherError naming what is wrong with it. */
export function compileMatcher(spec: MatcherSpec): Matcher {
  const read = fieldReader(spec.name);
  if (spec.value.length > MAX_MATCHER_VALUE) {
    throw new MatcherError(
      `Matcher value is ${spec.value.length} characters long, at most ${MAX_MATCHER_VALUE} are allowed`,
      "value",
    );
  }
  let matchValue: (v: string) => boolean;
  if (spec.is_regex) {
    let re: RE2JS;
    try {
      re = RE2JS.compile(spec.value);
    } catch (err) {
      throw new MatcherError(
        `Matcher regex "${spec.value}" is not valid: ${(err as Error).message}`,
        "value",
        {
          cause: err,
        },
      );
    }
    if (re.programSize() > MAX_REGEX_PROGRAM) {
      throw new MatcherError(
        `Matcher regex "${spec.value}" compiles to a program of ${re.programSize()} instructions, ` +
          `at most ${MAX_REGEX_PROGRAM} are allowed: use fewer or smaller repetitions`,
        "value",
      );
    }
    // `matches` is a full match: the anchoring Alertmanager does with ^(?:...)$.
    matchValue = (v) => re.matches(v);
  } else if (/[*?]/.test(spec.value)) {
    const glob = spec.value;
    matchValue = (v) => globMatch(glob, v);
  } else {
    const value = spec.value;
    matchValue = (v) => v === value;
  }
  const equal = spec.is_equal;
  return {
    name: spec.name,
    value: spec.value,
    is_regex: spec.is_regex,
    is_equal: equal,
    matchesEmpty: matchValue("") === equal,
    test: (alert) => matchValue(read(alert)) === equal,
  };
}

/** True when every matcher holds for `alert`. */
export function matchesAll(matchers: readonly Matcher[], alert: SensorAlert): boolean {
  for (const m of matchers) if (!m.test(alert)) return false;
  return true;
}

function fieldReader(name: string): (alert: SensorAlert) => string {
  if ((MATCHER_FIELDS as readonly string[]).includes(name)) {
    const field = name as typeof MATCHER_FIELDS[number];
    // The alert comes off a topic where the service's own fields are not checked: read strings only.
    return (alert) => {
      const v = (alert as Record<string, unknown>)[field];
      return typeof v === "string" ? v : "";
    };
  }
  if (LABEL.test(name)) {
    const label = name.slice("labels.".length);
    return (alert) => {
      const v = (alert.labels as Record<string, unknown> | undefined)?.[label];
      return typeof v === "string" ? v : "";
    };
  }
  throw new MatcherError(
    `Matcher name "${name}" must be one of ${MATCHER_FIELDS.join(", ")} or labels.<label>`,
    "name",
  );
}

/**
 * `*` any run, `?` one character, everything else literal. Backtracks only to the last `*`, so it is
 * linear in pattern × text whatever the pattern (a regex from a glob like `*a*a*a*b` is not).
 * With `single` false only `*` is special: rule selectors, where `?` is an ordinary character.
 */
export function globMatch(pattern: string, text: string, single = true): boolean {
  let p = 0;
  let t = 0;
  let star = -1;
  let resume = 0;
  while (t < text.length) {
    const c = pattern[p];
    if (c === "*") {
      star = p++;
      resume = t;
    } else if (c !== undefined && ((single && c === "?") || c === text[t])) {
      p++;
      t++;
    } else if (star >= 0) {
      p = star + 1;
      t = ++resume;
    } else {
      return false;
    }
  }
  while (pattern[p] === "*") p++;
  return p === pattern.length;
}

/**
 * A rule's selector glob (`temp-*`; only `*` is special), compiled once. The usual shapes (exact,
 * one star: `temp-*`, `*-3`, `temp-*-3`) are string comparisons; more stars go through `globMatch`,
 * linear in pattern × text. The RegExp these selectors were before backtracked on strings a producer
 * chooses: a location of 256 `-` (decode's limit) took 536 ms against `*-*-*-*-x`, 57 s against
 * `*-*-*-*-*-x`.
 */
export function globMatcher(glob: string): (text: string) => boolean {
  const star = glob.indexOf("*");
  if (star < 0) return (text) => text === glob;
  if (/^\*+$/.test(glob)) return () => true;
  if (star === glob.lastIndexOf("*")) {
    // One star: a prefix and a suffix that must not overlap.
    const head = glob.slice(0, star);
    const tail = glob.slice(star + 1);
    const min = head.length + tail.length;
    return (text) => text.length >= min && text.startsWith(head) && text.endsWith(tail);
  }
  return (text) => globMatch(glob, text, false);
}
