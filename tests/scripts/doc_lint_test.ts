import assert from "node:assert/strict";
import { type KnownDiagnostic, problems } from "../../scripts/doc_lint.ts";

const output = `error[missing-jsdoc]: exported symbol is missing JSDoc documentation
   --> /p/src/notifiers/plugin.ts:102:3
    |
102 |   name: string;
    |   ^


error[private-type-ref]: public type 'NotifierPlugin' references private type 'ZodType'
  --> /p/src/notifiers/plugin.ts:98:1
   |
98 | export interface NotifierPlugin<S extends z.ZodType = z.ZodType> {
   | ^

error: Found 2 documentation lint errors.
`;

const zod: KnownDiagnostic = { code: "private-type-ref", match: /private type 'ZodType'/, why: "zod" };
const gone: KnownDiagnostic = { code: "missing-explicit-type", match: /SensorAlert/, why: "inferred" };

Deno.test("doc:lint fails on a diagnostic it does not know, with its location", () => {
  const { unexpected, stale } = problems(output, [zod]);
  assert.equal(unexpected.length, 1);
  assert.match(unexpected[0]!, /^error\[missing-jsdoc\][^]*plugin\.ts:102:3[^]*name: string;/);
  assert.doesNotMatch(unexpected[0]!, /Found 2/);
  assert.deepEqual(stale, []);
});

Deno.test("doc:lint reports a known diagnostic that is no longer reported as stale", () => {
  const { unexpected, stale } = problems(output.replace(/^error\[missing-jsdoc\][^]*?(?=^error\[)/m, ""), [
    zod,
    gone,
  ]);
  assert.deepEqual(unexpected, []);
  assert.deepEqual(stale, [gone]);
});

Deno.test("doc:lint matches a known diagnostic by its code as well as its text", () => {
  const other: KnownDiagnostic = {
    code: "missing-jsdoc",
    match: /private type 'ZodType'/,
    why: "wrong code",
  };
  const { unexpected, stale } = problems(output, [other]);
  assert.equal(unexpected.length, 2);
  assert.deepEqual(stale, [other]);
});
