import assert from "node:assert/strict";
import { checkRules, jsonSchemas } from "../../src/rules/cli.ts";
import { parseRuleTestFile, runRuleTest } from "../../src/rules/testing.ts";

const TEST = `tests:
  - name: hot
    rules: [temperature-out-of-range]
    defaults: { sensor_id: t, sensor_type: temperature }
    events:
      - { at: 0s, value: 36 }
      - { at: 1m30s, value: 20 }
    expect:
      alerts:
        - { at: 0s, state: firing }
        - { at: 90s, state: resolved }
`;

Deno.test("runRuleTest() passes when alerts match, in virtual time", async () => {
  const { rules } = await checkRules("rules");
  const { tests, problems } = parseRuleTestFile("t.yaml", TEST);
  assert.deepEqual(problems, []);
  const r = runRuleTest("t.yaml", tests[0]!, rules);
  assert.equal(r.passed, true, r.diff);
});

Deno.test("runRuleTest() fails with a readable diff when an expectation is wrong", async () => {
  const { rules } = await checkRules("rules");
  const { tests } = parseRuleTestFile(
    "t.yaml",
    TEST.replace("{ at: 90s, state: resolved }", "{ at: 80s, state: resolved }"),
  );
  const r = runRuleTest("t.yaml", tests[0]!, rules);
  assert.equal(r.passed, false);
  assert.match(r.diff, /- expected alert #2: \{"at":"80s","state":"resolved"\}/);
  assert.match(r.diff, /\+ actual {3}alert #2: \{"at":"1m30s","state":"resolved"\}/);
  const missing = runRuleTest(
    "t.yaml",
    parseRuleTestFile("t.yaml", TEST.replace("        - { at: 90s, state: resolved }\n", "")).tests[0]!,
    rules,
  );
  assert.match(missing.diff, /unexpected alert #2/);
});

Deno.test("parseRuleTestFile() names the line of a bad test", () => {
  const { problems } = parseRuleTestFile(
    "t.yaml",
    "tests:\n  - name: x\n    events:\n      - { at: soon, value: 1 }\n    expect: {}\n",
  );
  assert.equal(problems.length, 1);
  assert.equal(problems[0]!.line, 4);
  assert.match(problems[0]!.message, /"tests\.0\.events\.0\.at"/);
});

Deno.test("the shipped JSON Schemas are the ones generated from the zod schemas", async () => {
  for (const [name, schema] of Object.entries(jsonSchemas())) {
    const shipped = JSON.parse(await Deno.readTextFile(`rules/${name}`));
    assert.deepEqual(
      shipped,
      JSON.parse(JSON.stringify(schema)),
      `rules/${name} is stale: run deno task rules:schema`,
    );
  }
});

async function runCli(args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-env", "src/rules/cli.ts", ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, text: new TextDecoder().decode(out.stdout) };
}

Deno.test("rules:check prints file:line:col rule-id: message and exits non-zero", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(
      `${dir}/a.yaml`,
      "rules:\n  - id: co2\n    sensor_type: co2\n    threshold: { max: 1 }\n    priority: urgent\n",
    );
    await Deno.writeTextFile(
      `${dir}/b.yaml`,
      "rules:\n  - { id: co2, sensor_type: co2, threshold: { max: 2 }, priority: low }\n",
    );
    await Deno.writeTextFile(
      `${dir}/c.yaml`,
      "rules:\n  - { id: ok, sensor_type: co2, threshold: { max: 2 }, priority: low }\n",
    );
    const { code, text } = await runCli(["check", dir]);
    assert.equal(code, 1);
    assert.match(text, new RegExp(`${dir}/a\\.yaml:5:15 co2: Field "priority": expected one of`));
    const good = await runCli(["check", "rules"]);
    assert.equal(good.code, 0, good.text);
    assert.match(good.text, /rule\(s\) in \d+ file\(s\) OK/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("rules:check reports an id defined in two files", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const rule = "rules:\n  - { id: same, sensor_type: co2, threshold: { max: 2 }, priority: low }\n";
    await Deno.writeTextFile(`${dir}/a.yaml`, rule);
    await Deno.writeTextFile(`${dir}/b.yaml`, rule);
    const { code, text } = await runCli(["check", dir]);
    assert.equal(code, 1);
    assert.match(text, /b\.yaml:2:5 same: Duplicate rule id, already defined at .*a\.yaml:2/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("rules:test exits non-zero when a rule test fails", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.copyFile("rules/default.yaml", `${dir}/default.yaml`);
    await Deno.mkdir(`${dir}/tests`);
    await Deno.writeTextFile(`${dir}/tests/t.yaml`, TEST.replace("state: firing", "state: resolved"));
    const failing = await runCli(["test", dir]);
    assert.equal(failing.code, 1);
    assert.match(failing.text, /FAIL .*› hot/);
    await Deno.writeTextFile(`${dir}/tests/t.yaml`, TEST);
    const passing = await runCli(["test", dir]);
    assert.equal(passing.code, 0, passing.text);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

const FOUR = `tests:
  - name: four
    rules: [temperature-out-of-range]
    defaults: { sensor_id: t, sensor_type: temperature }
    events:
      - { at: 0s, value: 36 }
      - { at: 10s, value: 20 }
      - { at: 20s, value: 5 }
      - { at: 30s, value: 20 }
    expect:
      alerts:
        - { at: 0s, state: firing, threshold: 35 }
        - { at: 10s, state: resolved }
        - { at: 20s, state: firing, threshold: 10 }
        - { at: 30s, state: resolved }
`;

async function run(text: string) {
  const { rules } = await checkRules("rules");
  const { tests, problems } = parseRuleTestFile("t.yaml", text);
  assert.deepEqual(problems, []);
  return runRuleTest("t.yaml", tests[0]!, rules);
}

Deno.test("runRuleTest() reports one forgotten expected alert as the one unexpected alert, nothing else", async () => {
  const r = await run(FOUR.replace("        - { at: 10s, state: resolved }\n", ""));
  assert.equal(r.passed, false);
  assert.deepEqual(r.diff.split("\n"), [
    '  + unexpected alert #2: {"at":"10s","state":"resolved","threshold":35}',
  ]);
});

Deno.test("runRuleTest() matches an expected alert to the actual one of its time and state", async () => {
  const r = await run(
    FOUR.replace("{ at: 20s, state: firing, threshold: 10 }", "{ at: 20s, state: firing, threshold: 11 }"),
  );
  assert.deepEqual(r.diff.split("\n"), [
    '  - expected alert #3: {"at":"20s","state":"firing","threshold":11}',
    '  + actual   alert #3: {"at":"20s","state":"firing","threshold":10}',
  ]);
});

Deno.test("runRuleTest() says no such field for a misspelt key", async () => {
  const r = await run(FOUR.replace("{ at: 30s, state: resolved }", "{ at: 30s, sate: resolved }"));
  assert.equal(r.passed, false);
  assert.match(r.diff, /expected alert #4 has "sate": no such field in an alert/);
});

Deno.test("runRuleTest() reads `at: 90` as 90 seconds, as event times are", async () => {
  const r = await run(TEST.replace("{ at: 90s, state: resolved }", "{ at: 90, state: resolved }"));
  assert.equal(r.passed, true, r.diff);
});
