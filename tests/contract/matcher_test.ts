import assert from "node:assert/strict";
import { compileMatcher, globMatch, MatcherError, type MatcherSpec } from "../../src/contract/matcher.ts";
import { compileMatchers, SilenceFieldError } from "../../src/notifiers/silences/silence.ts";
import { alert } from "../helpers/notifiers.ts";

const m = (name: string, value: string, over: Partial<MatcherSpec> = {}) =>
  compileMatcher({ name, value, is_regex: false, is_equal: true, ...over });

const co2 = alert();
const temp = alert({
  sensor_id: "temp-001",
  sensor_type: "temperature",
  rule_id: "temperature-out-of-range",
  priority: "high",
  location: null,
  labels: { team: "facilities" },
});

Deno.test("an equality matcher holds for the same value of its field only", () => {
  assert.equal(m("rule_id", "co2-critical").test(co2), true);
  assert.equal(m("rule_id", "co2-critical").test(temp), false);
  assert.equal(m("sensor_type", "temperature").test(temp), true);
  assert.equal(m("priority", "critical").test(co2), true);
  assert.equal(m("location", "Building A, Floor 1").test(co2), true);
  assert.equal(m("labels.team", "safety").test(co2), true);
  assert.equal(m("labels.team", "safety").test(temp), false);
});

Deno.test("a negated matcher holds where its equality would not", () => {
  const notCo2 = m("sensor_type", "co2", { is_equal: false });
  assert.equal(notCo2.test(co2), false);
  assert.equal(notCo2.test(temp), true);
  const notRegex = m("sensor_id", "temp-.*", { is_regex: true, is_equal: false });
  assert.equal(notRegex.test(temp), false);
  assert.equal(notRegex.test(co2), true);
});

Deno.test("a regex matcher is anchored at both ends", () => {
  const r = m("sensor_id", "temp-\\d+", { is_regex: true });
  assert.equal(r.test(temp), true);
  assert.equal(r.test(alert({ sensor_id: "xtemp-001" })), false);
  assert.equal(r.test(alert({ sensor_id: "temp-001b" })), false);
  assert.equal(m("rule_id", "co2|temperature-out-of-range", { is_regex: true }).test(temp), true);
  assert.equal(m("rule_id", "co2", { is_regex: true }).test(co2), false, "co2-critical is not co2");
});

Deno.test("an equality value with * or ? is a glob: sensor ids by prefix, suffix or single character", () => {
  assert.equal(m("sensor_id", "temp-*").test(temp), true);
  assert.equal(m("sensor_id", "temp-*").test(co2), false);
  assert.equal(m("sensor_id", "*-001").test(co2), true);
  assert.equal(m("sensor_id", "temp-00?").test(temp), true);
  assert.equal(m("sensor_id", "temp-0?").test(temp), false);
  assert.equal(m("sensor_id", "temp-*", { is_equal: false }).test(co2), true);
  // A dot in a glob is a dot, not any character.
  assert.equal(m("sensor_id", "temp.*").test(temp), false);
});

Deno.test("globMatch() agrees with a regex built from the glob", () => {
  const cases: [string, string][] = [
    ["*", ""],
    ["a*b*c", "aXbYc"],
    ["a*b*c", "abcb"],
    ["*a*a*a*b", "a".repeat(60)],
    ["?*?", "ab"],
    ["?*?", "a"],
    ["**x", "yyx"],
    ["a?c", "abc"],
    ["", ""],
    ["", "a"],
  ];
  for (const [glob, text] of cases) {
    const re = new RegExp(
      `^${glob.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".")}$`,
    );
    assert.equal(globMatch(glob, text), re.test(text), `${glob} against "${text}"`);
  }
});

Deno.test("a field the alert lacks reads as empty", () => {
  assert.equal(m("location", "Building A, Floor 1").test(temp), false);
  assert.equal(m("location", "", {}).test(temp), true);
  assert.equal(m("labels.missing", ".+", { is_regex: true }).test(co2), false);
});

Deno.test("compileMatcher() refuses an unknown name, a bad regex, a backreference and an overlong value", () => {
  assert.throws(() => m("sensor", "x"), (e) => e instanceof MatcherError && e.field === "name");
  assert.throws(() => m("sensor_id", "(temp", { is_regex: true }), /missing closing \)/);
  // RE2 has no backreferences: what makes a backtracking engine exponential is refused at once.
  assert.throws(() => m("sensor_id", "(a)\\1", { is_regex: true }), MatcherError);
  assert.throws(() => m("sensor_id", "a".repeat(257)), /at most 256/);
});

Deno.test("a regex that is catastrophic for a backtracking engine returns its answer (RE2)", () => {
  const r = m("sensor_id", "(a+)+b", { is_regex: true });
  // 128 characters is the longest sensor id; with RegExp this input would not return.
  assert.equal(r.test(alert({ sensor_id: "a".repeat(128) })), false);
});

Deno.test("compileMatchers() names the matcher that is wrong and refuses matchers that hold for everything", () => {
  assert.throws(
    () =>
      compileMatchers([
        { name: "rule_id", value: "x", is_regex: false, is_equal: true },
        { name: "sensor_id", value: "[", is_regex: true, is_equal: true },
      ]),
    (e) => e instanceof SilenceFieldError && e.field === "matchers.1.value",
  );
  assert.throws(
    () => compileMatchers([{ name: "sensor_id", value: ".*", is_regex: true, is_equal: true }]),
    (e) => e instanceof SilenceFieldError && e.field === "matchers",
  );
});

Deno.test("compileMatcher() refuses a short regex that compiles to a large program, and takes the usual ones", () => {
  // 19 characters, 3,002 instructions: every alert would run it against every silence that has it.
  assert.throws(
    () => m("sensor_id", "(\\pL|\\pN|\\pS){1000}", { is_regex: true }),
    (e) => e instanceof MatcherError && e.field === "value" && /program of 3002 instructions/.test(e.message),
  );
  assert.throws(() => m("sensor_id", ".{1000}.{1000}.{1000}", { is_regex: true }), MatcherError);
  for (const ok of ["temp-.*", "(co2|temp)-[0-9]+", "[a-z0-9-]{1,64}", "hall-(7|8)/.*", "[^x]{250}"]) {
    assert.equal(m("sensor_id", ok, { is_regex: true }).is_regex, true, ok);
  }
});
