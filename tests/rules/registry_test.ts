/**
 * The rules directory as the service sees it, with real files in a temporary directory: ids unique
 * across files, emptied and oversized files, symlinks, a missing directory, and the per-file cache.
 */
import assert from "node:assert/strict";
import { formatProblem, MAX_RULE_FILE_BYTES } from "../../src/rules/load.ts";
import { RuleRegistry } from "../../src/rules/registry.ts";

const rule = (id: string, max: number, extra = "") =>
  `  - id: ${id}\n    sensor_type: co2\n    threshold: { max: ${max} }\n    priority: critical\n${extra}`;
const file = (...rules: string[]) => `rules:\n${rules.join("")}`;

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "rules-registry-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("RuleRegistry keeps the rule in force when a new file reuses its id, and names both file:line", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/default.yaml`, file(rule("temp", 35), rule("co2-critical", 1000)));
    const registry = new RuleRegistry(dir);
    assert.deepEqual((await registry.reload()).problems, []);

    // Sorts before default.yaml: by name alone it would win and disable the shipped rule.
    await Deno.writeTextFile(
      `${dir}/00-override.yaml`,
      file(rule("co2-critical", 1000, "    enabled: false\n"), rule("extra", 5)),
    );
    const { problems, ruleSet } = await registry.reload();

    const co2 = ruleSet.byId.get("co2-critical")!;
    assert.equal(co2.source.file, `${dir}/default.yaml`);
    assert.equal(co2.rule.enabled, true);
    assert.ok(ruleSet.rules.includes(co2));
    assert.equal(problems.length, 1, problems.map(formatProblem).join("\n"));
    const text = formatProblem(problems[0]!);
    assert.match(text, new RegExp(`^${dir}/00-override\\.yaml:2:\\d+ co2-critical: Duplicate rule id`));
    assert.match(text, new RegExp(`already defined at ${dir}/default\\.yaml:6\\b`));
    // The refused file is all or nothing, like a file that does not validate.
    assert.equal(ruleSet.byId.get("extra"), undefined);

    const status = registry.status().find((s) => s.file === `${dir}/00-override.yaml`)!;
    assert.equal(status.current, false);
    assert.equal(status.problems.length, 1);
    assert.deepEqual(registry.problems(), problems);
  });
});

Deno.test("RuleRegistry lets an id move to another file when its first file gives it up", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/a.yaml`, file(rule("moving", 10)));
    const registry = new RuleRegistry(dir);
    await registry.reload();
    await Deno.writeTextFile(`${dir}/b.yaml`, file(rule("moving", 20)));
    assert.equal((await registry.reload()).problems.length, 1);
    assert.equal(registry.ruleSet.byId.get("moving")!.rule.threshold?.max, 10);

    await Deno.writeTextFile(`${dir}/a.yaml`, file(rule("other", 1)));
    const { problems, ruleSet } = await registry.reload();
    assert.deepEqual(problems, []);
    assert.equal(ruleSet.byId.get("moving")!.rule.threshold?.max, 20);
    assert.equal(ruleSet.byId.get("moving")!.source.file, `${dir}/b.yaml`);
  });
});

Deno.test("RuleRegistry keeps an emptied file's last good rules and reports it; deleting the file drops them", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/a.yaml`, file(rule("a1", 1), rule("a2", 2)));
    await Deno.writeTextFile(`${dir}/b.yaml`, file(rule("b1", 1)));
    const registry = new RuleRegistry(dir);
    await registry.reload();

    for (const emptied of ["", "# nothing here\n", "rules: []\n"]) {
      await Deno.writeTextFile(`${dir}/a.yaml`, emptied);
      const { problems, ruleSet } = await registry.reload();
      assert.deepEqual([...ruleSet.byId.keys()].sort(), ["a1", "a2", "b1"], JSON.stringify(emptied));
      assert.equal(problems.length, 1);
      assert.match(
        formatProblem(problems[0]!),
        new RegExp(`^${dir}/a\\.yaml:1:1 -: File has no rules: its last good version \\(2 rules\\) stays`),
      );
    }

    await Deno.remove(`${dir}/a.yaml`);
    const { problems, ruleSet, removed } = await registry.reload();
    assert.deepEqual(problems, []);
    assert.deepEqual([...ruleSet.byId.keys()], ["b1"]);
    assert.deepEqual(removed, [`${dir}/a.yaml`]);
  });
});

Deno.test("RuleRegistry accepts a new file without rules", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/a.yaml`, file(rule("a1", 1)));
    await Deno.writeTextFile(`${dir}/empty.yaml`, "# rules to come\n");
    const registry = new RuleRegistry(dir);
    const { problems, ruleSet } = await registry.reload();
    assert.deepEqual(problems, []);
    assert.deepEqual([...ruleSet.byId.keys()], ["a1"]);
  });
});

Deno.test("RuleRegistry loads a symlinked rule file and ignores hidden files", async () => {
  await withDir(async (dir) => {
    await Deno.mkdir(`${dir}/elsewhere`);
    await Deno.writeTextFile(`${dir}/elsewhere/linked.yaml`, file(rule("linked", 1)));
    await Deno.symlink("elsewhere/linked.yaml", `${dir}/linked.yaml`);
    // An editor's lock file (emacs `.#name`) is a dangling symlink with a rule file's name.
    await Deno.symlink("user@host.1234", `${dir}/.#linked.yaml`);
    const registry = new RuleRegistry(dir);
    const { problems, ruleSet } = await registry.reload();
    assert.deepEqual(problems, []);
    assert.deepEqual([...ruleSet.byId.keys()], ["linked"]);
    assert.equal(ruleSet.byId.get("linked")!.source.file, `${dir}/linked.yaml`);
  });
});

Deno.test("RuleRegistry keeps the rules of a symlink whose target went away and reports it", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/target.yml`, file(rule("linked", 1)));
    await Deno.symlink(`${dir}/target.yml`, `${dir}/linked.yaml`);
    const registry = new RuleRegistry(dir);
    await registry.reload();
    await Deno.rename(`${dir}/target.yml`, `${dir}/moved.txt`);
    const { problems, ruleSet } = await registry.reload();
    assert.deepEqual([...ruleSet.byId.keys()], ["linked"]);
    assert.equal(problems.length, 1);
    assert.match(formatProblem(problems[0]!), new RegExp(`^${dir}/linked\\.yaml:1:1 -: Cannot read file`));
  });
});

Deno.test("RuleRegistry refuses a file over the size limit with a clear error and loads the others", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/a.yaml`, file(rule("a1", 1)));
    const big = file(rule("big", 1)) + `# ${"x".repeat(MAX_RULE_FILE_BYTES)}\n`;
    await Deno.writeTextFile(`${dir}/big.yaml`, big);
    const registry = new RuleRegistry(dir);
    const { problems, ruleSet, parsed } = await registry.reload();
    assert.deepEqual([...ruleSet.byId.keys()], ["a1"]);
    assert.equal(problems.length, 1);
    assert.equal(
      formatProblem(problems[0]!),
      `${dir}/big.yaml:1:1 -: File is ${big.length} bytes, over the limit of ${MAX_RULE_FILE_BYTES} bytes ` +
        `for a rule file: split it into several files`,
    );
    assert.deepEqual(parsed, [`${dir}/a.yaml`]);
  });
});

Deno.test("RuleRegistry does not re-parse an unchanged file on reload", async () => {
  await withDir(async (dir) => {
    const a = file(rule("a1", 1));
    await Deno.writeTextFile(`${dir}/a.yaml`, a);
    await Deno.writeTextFile(`${dir}/b.yaml`, file(rule("b1", 1)));
    const registry = new RuleRegistry(dir);
    assert.deepEqual((await registry.reload()).parsed, [`${dir}/a.yaml`, `${dir}/b.yaml`]);
    assert.deepEqual((await registry.reload()).parsed, []);

    // Saved again with the same content (a new mtime): read and hashed, not parsed.
    await Deno.writeTextFile(`${dir}/a.yaml`, a);
    await Deno.utime(`${dir}/a.yaml`, new Date(), new Date(Date.now() + 5_000));
    const same = await registry.reload();
    assert.deepEqual(same.parsed, []);
    assert.equal(same.changed, false);

    await Deno.writeTextFile(`${dir}/b.yaml`, file(rule("b1", 2)));
    const edited = await registry.reload();
    assert.deepEqual(edited.parsed, [`${dir}/b.yaml`]);
    assert.equal(edited.changed, true);
    assert.equal(edited.ruleSet.byId.get("b1")!.rule.threshold?.max, 2);
    assert.equal(registry.parses, 3);
  });
});

Deno.test("RuleRegistry keeps its rules and reports it while the directory is missing", async () => {
  await withDir(async (parent) => {
    const dir = `${parent}/rules`;
    await Deno.mkdir(dir);
    await Deno.writeTextFile(`${dir}/a.yaml`, file(rule("a1", 1)));
    const registry = new RuleRegistry(dir);
    await registry.reload();
    await Deno.rename(dir, `${parent}/rules.old`);
    const { problems, ruleSet } = await registry.reload();
    assert.deepEqual([...ruleSet.byId.keys()], ["a1"]);
    assert.equal(problems.length, 1);
    assert.match(formatProblem(problems[0]!), new RegExp(`^${dir}:1:1 -: Cannot read the rules directory`));

    await Deno.mkdir(dir);
    await Deno.writeTextFile(`${dir}/a.yaml`, file(rule("a1", 3)));
    const back = await registry.reload();
    assert.deepEqual(back.problems, []);
    assert.equal(back.ruleSet.byId.get("a1")!.rule.threshold?.max, 3);
  });
});

Deno.test("RuleRegistry reports every id a refused file reuses", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/a.yaml`, file(rule("x", 1), rule("y", 1)));
    const registry = new RuleRegistry(dir);
    await registry.reload();
    await Deno.writeTextFile(`${dir}/b.yaml`, file(rule("x", 2), rule("y", 2), rule("z", 2)));
    const { problems, ruleSet } = await registry.reload();
    assert.deepEqual(problems.map((p) => [p.file, p.line, p.rule_id]), [
      [`${dir}/b.yaml`, 2, "x"],
      [`${dir}/b.yaml`, 6, "y"],
    ]);
    assert.deepEqual([...ruleSet.byId.keys()], ["x", "y"]);
    assert.deepEqual(ruleSet.rules.map((r) => r.source.file), [`${dir}/a.yaml`, `${dir}/a.yaml`]);
  });
});
