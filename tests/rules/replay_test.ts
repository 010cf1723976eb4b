/**
 * A recording replayed through the service (`deno task start --input -`) gives what the rule tests
 * say: for every shipped rule test, its events go through the real service and the alerts and
 * aggregates that come out are compared with the test's expectation.
 */
import assert from "node:assert/strict";
import { stringify } from "yaml";
import type { AggregatedSensorEvent, SensorAlert } from "../../src/contract/schemas.ts";
import { listRuleFiles, parseRuleFile } from "../../src/rules/load.ts";
import { parseRuleTestFile, type RuleTest, ruleTestDiff, ruleTestEvents } from "../../src/rules/testing.ts";
import { SERVICE_PERMISSIONS } from "../helpers/service.ts";

const rules = (await Promise.all(
  (await listRuleFiles("rules")).map(async (f) => parseRuleFile(f, await Deno.readTextFile(f))),
)).flatMap((r) => r.rules);
const tests: RuleTest[] = [];
for await (const entry of Deno.readDir("rules/tests")) {
  if (!entry.name.endsWith(".yaml")) continue;
  const file = `rules/tests/${entry.name}`;
  tests.push(...parseRuleTestFile(file, await Deno.readTextFile(file)).tests);
}

/** Replays a test's events through the service with only the test's rules; returns what it published. */
async function replay(
  test: RuleTest,
): Promise<{ alerts: SensorAlert[]; aggregates: AggregatedSensorEvent[] }> {
  const dir = await Deno.makeTempDir({ dir: ".", prefix: ".test-replay-rules-" });
  try {
    const selected = rules.filter((r) => test.rules === undefined || test.rules.includes(r.rule.id));
    await Deno.writeTextFile(`${dir}/rules.yaml`, stringify({ rules: selected.map((r) => r.rule) }));
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", ...SERVICE_PERMISSIONS, "main.ts", "--input", "-", "--http-port", "0"],
      env: {
        KAFKA_BROKERS: "",
        RULES_DIR: dir,
        DLQ_FILE: `${dir}/dlq.ndjson`,
        AGGREGATES_FILE: `${dir}/aggregates.ndjson`,
        LOG_LEVEL: "warn",
        NO_COLOR: "1",
      },
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const lines = ruleTestEvents(test).map(({ event }) => JSON.stringify(event) + "\n").join("");
    const writing = (async () => {
      const w = child.stdin.getWriter();
      await w.write(new TextEncoder().encode(lines));
      await w.close();
    })();
    const [result] = await Promise.all([child.output(), writing]);
    const stdout = new TextDecoder().decode(result.stdout);
    assert.equal(result.code, 0, new TextDecoder().decode(result.stderr).slice(-2000));
    const alerts = stdout.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l))
      .filter((a) => typeof a.alert_id === "string");
    const aggregates = await Deno.readTextFile(`${dir}/aggregates.ndjson`).then(
      (text) => text.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l)),
      (err) => err instanceof Deno.errors.NotFound ? [] : Promise.reject(err),
    );
    return { alerts, aggregates };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("the shipped rule tests are found", () => {
  assert.ok(tests.length >= 7, `${tests.length} tests`);
});

for (const test of tests) {
  Deno.test(`a replay through \`deno task start --input -\` agrees with rules:test: ${test.name}`, async () => {
    const { alerts, aggregates } = await replay(test);
    assert.deepEqual(ruleTestDiff(test, alerts, aggregates), []);
  });
}
