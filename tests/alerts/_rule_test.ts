/** Runs YAML rule tests (`rules:test` style, in virtual time) against the rules of one YAML text. */
import assert from "node:assert/strict";
import { parseRuleFile } from "../../src/rules/load.ts";
import { parseRuleTestFile, runRuleTest } from "../../src/rules/testing.ts";

/** Asserts that every test of `tests` passes against `rules`, showing the diff of one that does not. */
export function assertRuleTests(rules: string, tests: string): void {
  const compiled = parseRuleFile("rules.yaml", rules);
  assert.deepEqual(compiled.problems, []);
  const parsed = parseRuleTestFile("tests.yaml", tests);
  assert.deepEqual(parsed.problems, []);
  assert.ok(parsed.tests.length > 0);
  for (const t of parsed.tests) {
    const r = runRuleTest("tests.yaml", t, compiled.rules);
    assert.equal(r.passed, true, `${t.name}\n${r.diff}`);
  }
}
