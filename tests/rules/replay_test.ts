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

/** The rules and limits tables of a directory, as the service would load them. */
async function rulesOf(dir: string) {
  const files = await Promise.all(
    (await listRuleFiles(dir)).map(async (f) => parseRuleFile(f, await Deno.readTextFile(f))),
  );
  return {
    rules: files.flatMap((r) => r.rules),
    limits: Object.fromEntries(files.flatMap((r) => r.limits ?? []).map((d) => [d.name, d.table])),
  };
}

// Each test with the rules it is written for: the directory's, or its file's `rules_dir`.
const tests: (RuleTest & { dir: Awaited<ReturnType<typeof rulesOf>> })[] = [];
for await (const entry of Deno.readDir("rules/tests")) {
  if (!entry.name.endsWith(".yaml")) continue;
  const file = `rules/tests/${entry.name}`;
  const parsed = parseRuleTestFile(file, await Deno.readTextFile(file));
  const dir = await rulesOf(parsed.rulesDir ?? "rules");
  tests.push(...parsed.tests.map((t) => ({ ...t, dir })));
}

/** Replays a test's events through the service with only the test's rules; returns what it published. */
async function replay(
  test: (typeof tests)[number],
): Promise<{ alerts: SensorAlert[]; aggregates: AggregatedSensorEvent[] }> {
  const dir = await Deno.makeTempDir({ dir: ".", prefix: ".test-replay-rules-" });
  try {
    const selected = test.dir.rules.filter((r) => test.rules === undefined || test.rules.includes(r.rule.id));
    await Deno.writeTextFile(
      `${dir}/rules.yaml`,
      stringify({ rules: selected.map((r) => r.rule), limits: test.dir.limits }),
    );
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
