/**
 * `deno task rules:check [DIR]`, `deno task rules:test [DIR]`, `deno task rules:schema`.
 *
 * @module
 */
import { z } from "zod";
import { usage } from "../config/docs.ts";
import { readSettings } from "../config/setting.ts";
import { commands as configured } from "../config/settings.ts";
import { env } from "../env.ts";
import { print } from "../log.ts";
import type { CompiledRule } from "./compile.ts";
import type { CompiledInhibition } from "./inhibit.ts";
import { parseYaml } from "../yaml.ts";
import { formatProblem, listRuleFiles, readRuleFileBytes, type RuleProblem } from "./load.ts";
import { Limits } from "./limits.ts";
import { RuleRegistry } from "./registry.ts";
import { RuleFile } from "./schema.ts";
import { parseRuleTestFile, RuleTestFile, runRuleTest } from "./testing.ts";

/**
 * Every problem in the directory, including ids used twice across files (both file:line), and the
 * compiled rules: the service's own loader, so a directory that passes here loads the same there.
 */
export async function checkRules(
  dir: string,
): Promise<
  {
    rules: CompiledRule[];
    inhibitions: readonly CompiledInhibition[];
    limits: Limits;
    problems: RuleProblem[];
    files: number;
  }
> {
  const registry = new RuleRegistry(dir);
  const { ruleSet, problems } = await registry.reload();
  problems.push(...await duplicatesInBrokenFiles(dir, problems));
  return {
    rules: [...ruleSet.byId.values()],
    inhibitions: ruleSet.inhibitions,
    limits: ruleSet.limits,
    problems,
    files: registry.status().length,
  };
}

/**
 * Ids declared in more than one file that the loader did not report because a file had other
 * problems (a file is all or nothing, so its rules never met the others'): a user fixing a file
 * should learn of every problem in one round, not of the duplicate after fixing the rest.
 */
async function duplicatesInBrokenFiles(
  dir: string,
  reported: readonly RuleProblem[],
): Promise<RuleProblem[]> {
  const first = new Map<string, { file: string; line: number }>();
  const out: RuleProblem[] = [];
  const known = new Set(
    reported.filter((p) => p.message.startsWith("Duplicate rule id")).map((p) => p.rule_id),
  );
  for (const file of await listRuleFiles(dir).catch(() => [])) {
    const read = await readRuleFileBytes(file);
    if (read.bytes === null) continue;
    const doc = parseYaml(file, new TextDecoder().decode(read.bytes));
    const list = (doc.value as { rules?: unknown } | null)?.rules;
    if (!Array.isArray(list)) continue;
    for (const [i, item] of list.entries()) {
      const id = (item as { id?: unknown } | null)?.id;
      if (typeof id !== "string") continue;
      const at = doc.locate(["rules", i, "id"]);
      const seen = first.get(id);
      if (seen === undefined) {
        first.set(id, { file, line: at.line });
      } else if (seen.file !== file && !known.has(id)) {
        out.push({
          file,
          ...at,
          rule_id: id,
          message: `Duplicate rule id, also defined at ${seen.file}:${seen.line}`,
        });
      }
    }
  }
  return out;
}

async function check(dir: string): Promise<number> {
  const { rules, problems, files } = await checkRules(dir);
  for (const p of problems) print(formatProblem(p));
  if (problems.length > 0) {
    print(`${problems.length} problem(s) in ${dir}`);
    return 1;
  }
  print(`${rules.length} rule(s) in ${files} file(s) OK`);
  return 0;
}

async function test(dir: string): Promise<number> {
  const { rules, inhibitions, limits, problems } = await checkRules(dir);
  if (problems.length > 0) {
    for (const p of problems) print(formatProblem(p));
    print("Fix the rule files first (deno task rules:check)");
    return 1;
  }
  const testDir = `${dir.replace(/\/+$/, "")}/tests`;
  let files: string[];
  try {
    files = await listRuleFiles(testDir);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      print(`No rule tests: ${testDir} does not exist`);
      return 1;
    }
    throw err;
  }
  let passed = 0;
  let failed = 0;
  for (const file of files) {
    const { tests, problems, rulesDir } = parseRuleTestFile(file, await Deno.readTextFile(file));
    for (const p of problems) {
      print(`${p.file}:${p.line}:${p.column} - ${p.message}`);
      failed++;
    }
    // A file of tests for another directory's rules (`rules_dir`, such as rules/examples/): they must
    // check as cleanly as the directory's own.
    let own = { rules, inhibitions, limits };
    if (rulesDir !== null) {
      const other = await checkRules(rulesDir).catch((err: Error) => ({
        rules: [],
        inhibitions: [],
        limits: Limits.EMPTY,
        problems: [{
          file,
          line: 1,
          column: 1,
          rule_id: null,
          message: `Cannot read "${rulesDir}": ${err.message}`,
        }],
        files: 0,
      }));
      for (const p of other.problems) {
        print(formatProblem(p));
        failed++;
      }
      own = other;
    }
    for (const t of tests) {
      const r = runRuleTest(file, t, own.rules, own.inhibitions, own.limits);
      if (r.passed) {
        passed++;
        print(`ok   ${file} › ${t.name}`);
      } else {
        failed++;
        print(`FAIL ${file} › ${t.name}\n${r.diff}`);
      }
    }
  }
  print(`${passed} passed, ${failed} failed`);
  return failed > 0 || passed === 0 ? 1 : 0;
}

/** JSON Schemas for editors, generated from the same zod schemas the loader validates with. */
export function jsonSchemas(): Record<string, unknown> {
  return {
    "rules.schema.json": z.toJSONSchema(RuleFile, { io: "input", unrepresentable: "any" }),
    "rule-tests.schema.json": z.toJSONSchema(RuleTestFile, { io: "input", unrepresentable: "any" }),
  };
}

async function schema(dir: string): Promise<number> {
  for (const [name, value] of Object.entries(jsonSchemas())) {
    const path = `${dir.replace(/\/+$/, "")}/${name}`;
    await Deno.writeTextFile(path, JSON.stringify(value, null, 2) + "\n");
    print(`Wrote ${path}`);
  }
  return 0;
}

if (import.meta.main) {
  const [command, dir = "rules"] = Deno.args;
  const commands: Record<string, (dir: string) => Promise<number>> = { check, test, schema };
  const run = command === undefined ? undefined : commands[command];
  if (run === undefined) {
    print(usage(configured.rules));
    Deno.exit(2);
  }
  try {
    readSettings(configured.rules.settings, [], env);
  } catch (err) {
    print((err as Error).message);
    Deno.exit(2);
  }
  let code: number;
  try {
    // The loader reports a missing directory as a problem among others (the service keeps its rules
    // in force); here it is the whole answer.
    if (command !== "schema" && !(await Deno.stat(dir)).isDirectory) throw new Deno.errors.NotFound(dir);
    code = await run(dir);
  } catch (err) {
    // One line, no stack: the usual cause is a wrong directory.
    const reason = err instanceof Deno.errors.NotFound ? "no such directory" : (err as Error).message;
    print(`Cannot ${command === "schema" ? "write to" : "read"} rules directory "${dir}": ${reason}`);
    code = 1;
  }
  Deno.exit(code);
}
