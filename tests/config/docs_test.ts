import assert from "node:assert/strict";
import { readmeTable, TABLE_BEGIN, TABLE_END, usage } from "../../src/config/docs.ts";
import { allowedEnv, commands } from "../../src/config/settings.ts";

const REGENERATE = "differs from src/config/settings.ts: run deno task config:docs";

/** A markdown table's cells, whatever the padding deno fmt gave it. */
function cells(table: string): string[][] {
  return table.split("\n").filter((l) => l.startsWith("|") && !/^\|[\s|:-]+\|$/.test(l))
    .map((l) => l.slice(1, -1).split(/(?<!\\)\|/).map((c) => c.trim()));
}

Deno.test("README.md's Configuration table is the one generated from the settings", async () => {
  const readme = await Deno.readTextFile("README.md");
  const begin = readme.indexOf(TABLE_BEGIN);
  const end = readme.indexOf(TABLE_END);
  assert.ok(begin >= 0 && end > begin, `README.md has no generated Configuration table: ${REGENERATE}`);
  assert.deepEqual(cells(readme.slice(begin, end)), cells(readmeTable()), `README.md's table ${REGENERATE}`);
});

Deno.test("each task's --allow-env list is the variables its command reads", async () => {
  const tasks: Record<string, string> = JSON.parse(await Deno.readTextFile("deno.json")).tasks;
  for (const command of Object.values(commands)) {
    for (const task of command.tasks) {
      const list = tasks[task]?.match(/--allow-env=(\S+)/)?.[1]?.split(",");
      assert.deepEqual(list, allowedEnv(command), `deno.json's "${task}" --allow-env list ${REGENERATE}`);
    }
  }
});

Deno.test("no task a user runs is given every permission", async () => {
  const tasks: Record<string, string> = JSON.parse(await Deno.readTextFile("deno.json")).tasks;
  for (const [name, line] of Object.entries(tasks)) {
    assert.doesNotMatch(line, /\s(-A|--allow-all)(\s|$)/, `Task "${name}" runs with -A`);
  }
});

Deno.test("each command's USAGE names every flag and variable it reads", () => {
  for (const command of Object.values(commands)) {
    const text = usage(command);
    for (const s of Object.values(command.settings)) {
      if (s.flag !== undefined) {
        assert.ok(text.includes(`--${s.flag}`), `${command.synopsis}: no --${s.flag}`);
      }
      if (s.env !== undefined) assert.ok(text.includes(s.env), `${command.synopsis}: no ${s.env}`);
    }
  }
});

Deno.test("no code reads an environment variable the settings do not declare", async () => {
  const declared = new Set(Object.values(commands).flatMap((c) => allowedEnv(c)));
  const reads =
    /\b(?:env|processEnv)\.([A-Z][A-Z0-9_]*)\b|getEnv\("([A-Z0-9_]+)"\)|Deno\.env\.get\("([A-Z0-9_]+)"\)/g;
  const undeclared: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for await (const entry of Deno.readDir(dir)) {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory) await walk(path);
      else if (path.endsWith(".ts")) {
        for (const m of (await Deno.readTextFile(path)).matchAll(reads)) {
          const name = m[1] ?? m[2] ?? m[3]!;
          if (!declared.has(name)) undeclared.push(`${path}: ${name}`);
        }
      }
    }
  };
  for (const dir of ["src", "plugins", "scripts"]) await walk(dir);
  assert.deepEqual(undeclared, [], "declare them in src/config/settings.ts and read them with readSettings");
});
