import assert from "node:assert/strict";
import { checkRules } from "../../src/rules/cli.ts";
import { parseRuleTestFile, runRuleTest } from "../../src/rules/testing.ts";

// t1 and t3 are silenced for five minutes: t1 still fires at its end, t3 resolved before it.
const TEST = `tests:
  - name: a maintenance silence
    rules: [temperature-out-of-range]
    defaults: { sensor_type: temperature }
    silences:
      - id: maintenance
        matchers: [{ name: sensor_id, value: "t[13]", is_regex: true }]
        starts_at: 0s
        ends_at: 5m
    events:
      - { at: 0s, sensor_id: t1, value: 36 }
      - { at: 10s, sensor_id: t2, value: 36 }
      - { at: 20s, sensor_id: t3, value: 36 }
      - { at: 1m, sensor_id: t3, value: 20 }
      - { at: 6m, sensor_id: t1, value: 20 }
    expect:
      notifications:
        - { at: 10s, sensor_id: t2, state: firing, released: false }
        - { at: 5m, sensor_id: t1, state: firing, released: true }
        - { at: 6m, sensor_id: t1, state: resolved, released: false }
      suppressed:
        - { at: 0s, sensor_id: t1, state: firing, silenced_by: maintenance }
        - { at: 20s, sensor_id: t3, state: firing, silenced_by: maintenance }
        - { at: 1m, sensor_id: t3, state: resolved, silenced_by: maintenance }
`;

async function run(text: string) {
  const { rules } = await checkRules("rules");
  const { tests, problems } = parseRuleTestFile("t.yaml", text);
  assert.deepEqual(problems, []);
  return runRuleTest("t.yaml", tests[0]!, rules);
}

Deno.test("runRuleTest() with silences: a held alert is notified at the silence's end, one that resolved meanwhile never", async () => {
  const r = await run(TEST);
  assert.equal(r.passed, true, r.diff);
});

Deno.test("runRuleTest() with silences fails with a diff when a suppressed alert is expected as notified", async () => {
  const r = await run(TEST.replace(
    "        - { at: 6m, sensor_id: t1, state: resolved, released: false }\n",
    "        - { at: 6m, sensor_id: t1, state: resolved, released: false }\n" +
      "        - { at: 5m, sensor_id: t3, state: firing, released: true }\n",
  ));
  assert.equal(r.passed, false);
  assert.match(
    r.diff,
    /- missing notification #4: \{"at":"5m","sensor_id":"t3","state":"firing","released":true\}/,
  );
  const early = await run(TEST.replace("ends_at: 5m", "ends_at: 4m"));
  assert.match(
    early.diff,
    /- expected notification #2: \{"at":"5m",.*\n {2}\+ actual {3}notification #2: \{"at":"4m",/,
  );
});

Deno.test("runRuleTest() without silences notifies every alert as it comes", async () => {
  const r = await run(TEST.replace(/ {4}silences:\n(?: {6,}.*\n)+/, ""));
  assert.equal(r.passed, false);
  assert.match(
    r.diff,
    /\+ actual {3}notification #1: \{"at":"0s","sensor_id":"t1","state":"firing","released":false\}/,
  );
  assert.match(r.diff, /\+ unexpected notification #3: \{"at":"20s","sensor_id":"t3","state":"firing"/);
  assert.match(r.diff, /- missing suppressed alert #1/);
});

Deno.test("runRuleTest() names the silence whose matcher is not valid", async () => {
  const r = await run(TEST.replace('value: "t[13]"', 'value: "t[13"'));
  assert.equal(r.passed, false);
  assert.match(r.diff, /Silence "maintenance", matcher #1: Matcher regex "t\[13" is not valid/);
});

Deno.test("parseRuleTestFile() refuses a silence that ends before it starts, at its line", () => {
  const { problems } = parseRuleTestFile("t.yaml", TEST.replace("ends_at: 5m", "ends_at: 0s"));
  assert.equal(problems.length, 1);
  assert.equal(problems[0]!.line, 9);
  assert.match(problems[0]!.message, /"tests\.0\.silences\.0\.ends_at": must be after starts_at/);
});
