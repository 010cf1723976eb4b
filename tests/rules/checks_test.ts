/** What `rules:check` refuses: placeholders that would print verbatim or empty, settings that cannot work. */
import assert from "node:assert/strict";
import { parseRuleFile } from "../../src/rules/load.ts";
import { compileTemplate } from "../../src/rules/template.ts";

function problems(
  extra: string,
  base = "    sensor_type: temperature\n    threshold: { min: 10, max: 30 }\n",
): string[] {
  const r = parseRuleFile("t.yaml", `rules:\n  - id: r\n    priority: low\n${base}${extra}`);
  return r.problems.map((p) => p.message);
}

const WINDOW =
  "    sensor_type: temperature\n    window: { type: tumbling, size: 1m }\n    threshold: { max: 30 }\n";
const DEADMAN = "    absent_for: 5m\n";

const REFUSED: [string, string, string, RegExp][] = [
  ["a placeholder with a dash", '    message: "{{sensor-id}}"\n', "", /placeholder "\{\{sensor-id\}\}"/],
  [
    "a placeholder with a filter",
    '    message: "{{ value | round }}"\n',
    "",
    /placeholder "\{\{ value \| round \}\}"/,
  ],
  ["an aggregate in an event rule", '    message: "{{avg}}"\n', "", /"\{\{avg\}\}".*window rule/],
  [
    "absent_for in an event rule's message",
    '    message: "{{absent_for}}"\n',
    "",
    /"\{\{absent_for\}\}".*deadman rule/,
  ],
  ["a hysteresis that empties the band", "    hysteresis: 15\n", "", /hysteresis.*never resolve/],
  ["allowed_lateness without a window", "    allowed_lateness: 30s\n", "", /allowed_lateness.*window/],
  ["startup_grace on an event rule", "    startup_grace: 1m\n", "", /startup_grace.*absent_for/],
  ["clear on a deadman rule", '    clear: { "<": [{ var: value }, 1] }\n', DEADMAN, /clear.*deadman/],
  ["a zero repeat_interval", "    repeat_interval: 0s\n", "", /repeat_interval.*greater than zero/],
];

for (const [what, extra, base, pattern] of REFUSED) {
  Deno.test(`parseRuleFile() refuses ${what}`, () => {
    const got = base === "" ? problems(extra) : problems(extra, base);
    assert.ok(got.some((m) => pattern.test(m)), `${JSON.stringify(got)} does not match ${pattern}`);
  });
}

Deno.test("parseRuleFile() accepts aggregates in a window rule's message and deadman facts in a deadman rule's", () => {
  assert.deepEqual(problems('    message: "{{avg}} {{p95}} {{group}}"\n', WINDOW), []);
  assert.deepEqual(problems('    message: "{{absent_for}} {{last_seen}}"\n', DEADMAN), []);
  assert.deepEqual(problems("    hysteresis: 9.5\n"), []);
});

Deno.test("a message shows small numbers with their significant digits", () => {
  const t = compileTemplate("{{value}} {{threshold}} {{avg}}", (_, message) => {
    throw new Error(message);
  }, "window");
  assert.equal(t({ value: 0.004, threshold: 0.003, avg: 37.256 }), "0.004 0.003 37.26");
  assert.equal(t({ value: 0.0012345, threshold: -0.5, avg: 1200 }), "0.00123 -0.5 1200");
});

Deno.test("parseRuleFile() reports a misspelt key at its own line as no such field", () => {
  const r = parseRuleFile(
    "t.yaml",
    "rules:\n  - id: r\n    priority: low\n    sensor_type: temperature\n    threshhold: { max: 30 }\n",
  );
  const typo = r.problems.find((p) => p.message.includes("threshhold"));
  assert.ok(typo !== undefined, JSON.stringify(r.problems));
  assert.equal(typo.message, 'No such field "threshhold" in this rule');
  assert.deepEqual([typo.line, typo.column], [5, 5]);
});

Deno.test("parseRuleFile() reports every JSON-Logic problem of a rule, not only the first", () => {
  const r = parseRuleFile(
    "t.yaml",
    [
      "rules:",
      "  - id: r",
      "    priority: low",
      "    sensor_type: temperature",
      '    condition: { and: [{ frobnicate: [1] }, { ">": [{ var: valu }, 1] }, { "<": [1] }] }',
      "",
    ].join("\n"),
  );
  assert.deepEqual(r.problems.map((p) => p.message.replace(/ \(known: .*\)/, "")), [
    'At "condition.and.0.frobnicate": Unknown JSON-Logic operation "frobnicate"',
    'At "condition.and.1.>.0.var": Unknown field "valu" in "var"',
    'At "condition.and.2.<": Operation "<" takes 2 to 3 argument(s), got 1',
  ]);
});

Deno.test("checkRules() reports an id used in two files even when one of them has other problems", async () => {
  const { checkRules } = await import("../../src/rules/cli.ts");
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(
      `${dir}/a.yaml`,
      "rules:\n  - id: shared\n    priority: low\n    sensor_type: temperature\n    threshold: { max: 30 }\n    bogus: 1\n",
    );
    await Deno.writeTextFile(
      `${dir}/b.yaml`,
      "rules:\n  - id: shared\n    priority: low\n    sensor_type: temperature\n    threshold: { max: 30 }\n",
    );
    const { problems } = await checkRules(dir);
    const dup = problems.find((p) => p.message.startsWith("Duplicate rule id"));
    assert.ok(dup !== undefined, JSON.stringify(problems));
    assert.equal(dup.file, `${dir}/b.yaml`);
    assert.match(dup.message, new RegExp(`also defined at ${dir}/a.yaml:2`));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
