import assert from "node:assert/strict";
import { formatProblem, parseRuleFile, readRuleFileBytes } from "../../src/rules/load.ts";
import { fingerprint, stableStringify } from "../../src/rules/compile.ts";

Deno.test("parseRuleFile() compiles a valid file and records where each rule is", () => {
  const r = parseRuleFile(
    "a.yaml",
    `rules:
  - id: hot
    sensor_type: temperature
    threshold: { max: 35 }
    priority: high
  - id: wet
    sensor_type: [humidity]
    condition: { ">": [{ var: value }, 80] }
    priority: normal
`,
  );
  assert.deepEqual(r.problems, []);
  assert.deepEqual(r.rules.map((x) => [x.rule.id, x.source.line]), [["hot", 2], ["wet", 6]]);
});

Deno.test("parseRuleFile() reports YAML syntax errors with line and column", () => {
  const r = parseRuleFile("bad.yaml", "rules:\n  - id: x\n    priority: [high\n");
  assert.equal(r.rules.length, 0);
  assert.ok(r.problems.length > 0);
  assert.equal(r.problems[0]!.file, "bad.yaml");
  assert.ok(r.problems[0]!.line >= 3, formatProblem(r.problems[0]!));
});

Deno.test("parseRuleFile() names file, line, rule and field of a schema error", () => {
  const r = parseRuleFile(
    "rules/x.yaml",
    `rules:
  - id: co2-critical
    sensor_type: co2
    threshold: { max: 1000 }
    priority: urgent
`,
  );
  assert.equal(r.problems.length, 1);
  const p = r.problems[0]!;
  assert.equal(p.rule_id, "co2-critical");
  assert.equal(p.line, 5);
  assert.match(formatProblem(p), /^rules\/x\.yaml:5:\d+ co2-critical: Field "priority": .*low.*critical/);
});

Deno.test("parseRuleFile() rejects an unknown JSON-Logic operation at its place in the expression", () => {
  const r = parseRuleFile(
    "r.yaml",
    `rules:
  - id: typo
    priority: low
    condition:
      and:
        - { ">": [{ var: value }, 1] }
        - { "bteween": [{ var: value }, 1, 2] }
`,
  );
  assert.equal(r.problems.length, 1);
  const p = r.problems[0]!;
  assert.equal(p.rule_id, "typo");
  assert.equal(p.line, 7);
  assert.match(p.message, /condition\.and\.1\.bteween.*Unknown JSON-Logic operation "bteween"/);
});

Deno.test("parseRuleFile() rejects a wrong arity and an unknown var path", () => {
  const arity = parseRuleFile(
    "r.yaml",
    `rules:\n  - id: a\n    priority: low\n    condition: { ">": [1] }\n`,
  );
  assert.match(arity.problems[0]!.message, /">" takes 2 argument\(s\), got 1/);
  const path = parseRuleFile(
    "r.yaml",
    `rules:\n  - id: b\n    priority: low\n    condition: { ">": [{ var: valu }, 1] }\n`,
  );
  assert.match(path.problems[0]!.message, /Unknown field "valu"/);
  const meta = parseRuleFile(
    "r.yaml",
    `rules:\n  - id: c\n    priority: low\n    condition: { "<": [{ var: metadata.battery_level }, 20] }\n`,
  );
  assert.deepEqual(meta.problems, []);
});

Deno.test("parseRuleFile() needs exactly one of condition and threshold, and known placeholders", () => {
  const none = parseRuleFile("r.yaml", `rules:\n  - id: a\n    priority: low\n`);
  assert.match(
    none.problems[0]!.message,
    /exactly one of "condition", "threshold", "limits", "sequence" or "absent_for"/,
  );
  const tpl = parseRuleFile(
    "r.yaml",
    `rules:\n  - id: a\n    priority: low\n    threshold: { max: 1 }\n    message: "{{sensor}} hot"\n`,
  );
  assert.match(tpl.problems[0]!.message, /Unknown placeholder "\{\{sensor\}\}"/);
});

Deno.test("parseRuleFile() refuses a duplicate id within a file", () => {
  const r = parseRuleFile(
    "r.yaml",
    `rules:\n  - { id: a, priority: low, threshold: { max: 1 } }\n  - { id: a, priority: low, threshold: { max: 2 } }\n`,
  );
  assert.equal(r.rules.length, 0);
  assert.match(r.problems[0]!.message, /Duplicate rule id/);
  assert.equal(r.problems[0]!.line, 3);
});

Deno.test("a rule's fingerprint is FNV-1a 64 of its sorted definition: the same rule, the same hash", () => {
  // The published FNV-1a test vectors.
  assert.equal(fingerprint(""), "cbf29ce484222325");
  assert.equal(fingerprint("a"), "af63dc4c8601ec8c");
  assert.equal(fingerprint("foobar"), "85944171f73967e8");
  assert.equal(
    fingerprint(stableStringify({ b: 1, a: [2] })),
    fingerprint(stableStringify({ a: [2], b: 1 })),
  );
  assert.notEqual(fingerprint(stableStringify({ a: 1 })), fingerprint(stableStringify({ a: 2 })));
});

Deno.test("parseRuleFile() refuses a sliding window whose slide would put each event in too many windows, or in none", () => {
  const problems = (slide: string, size = "60s") =>
    parseRuleFile(
      "w.yaml",
      `rules:
  - id: w
    sensor_type: temperature
    window: { type: sliding, size: ${size}, slide: ${slide} }
    condition: { ">": [{ var: avg }, 30] }
    priority: low
`,
    ).problems.map((p) => `${p.line} ${p.message}`);
  // 0.0001ms: "start -= slide" left a start near 1.7e12 as it was, and the first event never ended;
  // 10ms under 1h made 360,000 windows per sensor, 32 s for its first event.
  assert.deepEqual(problems("0.0001ms"), ['4 Field "window.slide": must be at least 1ms']);
  assert.deepEqual(problems("0s"), ['4 Field "window.slide": must be at least 1ms']);
  assert.deepEqual(problems("10ms", "1h"), [
    '4 Field "window.slide": puts each event in 360000 windows ("size" / "slide"); at most 1000',
  ]);
  assert.deepEqual(problems("60ms"), []);
  assert.deepEqual(problems("20s"), []);
});

Deno.test("parseRuleFile() checks what a var's name is computed from, and refuses anomaly operations inside var", () => {
  const problems = (condition: string) =>
    parseRuleFile(
      "v.yaml",
      `rules:
  - id: v
    sensor_type: temperature
    condition: ${condition}
    priority: low
`,
    ).problems.map((p) => `${p.line} ${p.message}`);
  // Each passed rules:check and then failed (or printed) at every event, its event dead-lettered.
  assert.deepEqual(problems(`{ ">": [{ var: [{ no_such_op: 1 }] }, 1] }`), [
    '4 At "condition.>.0.var.0.no_such_op": Unknown JSON-Logic operation "no_such_op"',
  ]);
  assert.deepEqual(problems(`{ ">": [{ var: [{ log: "hello" }] }, 1] }`), [
    '4 At "condition.>.0.var.0.log": Unknown JSON-Logic operation "log"',
  ]);
  assert.deepEqual(problems(`{ ">": [{ var: [value, { zscore: [value, 1m] }] }, 1] }`), [
    '4 At "condition.>.0.var.1.zscore": "zscore" cannot be used inside "var"',
  ]);
  assert.deepEqual(problems(`{ ">": [{ var: [{ cat: ["val", "ue"] }] }, 1] }`), []);
});

Deno.test("parseRuleFile() refuses a message template over 4,096 characters, without trying its braces", () => {
  // 250 KB of "{" paused the event loop 17.9 s while the placeholders were looked for.
  const r = parseRuleFile(
    "m.yaml",
    `rules:\n  - id: m\n    sensor_type: temperature\n    threshold: { max: 35 }\n    priority: low\n    message: "${
      "{".repeat(250_000)
    }"\n`,
  );
  assert.deepEqual(r.problems.map((p) => `${p.line} ${p.message.slice(0, 40)}`), [
    '6 Field "message": Too big: expected strin',
  ]);
});

Deno.test("readRuleFileBytes() refuses a file that is not UTF-8, at the line of its first bad byte", async () => {
  const dir = await Deno.makeTempDir();
  const latin1 = new Uint8Array([
    ...new TextEncoder().encode('rules:\n  - id: t\n    message: "too hot: 35 '),
    0xb0, // "°" in Latin-1
    ...new TextEncoder().encode('C"\n'),
  ]);
  await Deno.writeFile(`${dir}/l.yaml`, latin1);
  const read = await readRuleFileBytes(`${dir}/l.yaml`);
  assert.equal(read.bytes, null);
  assert.equal(read.problem?.line, 3);
  assert.match(read.problem?.message ?? "", /not UTF-8/);
  await Deno.writeTextFile(`${dir}/u.yaml`, "\uFEFFrules: [] # °C, 温度\n");
  assert.equal((await readRuleFileBytes(`${dir}/u.yaml`)).problem, null);
});
