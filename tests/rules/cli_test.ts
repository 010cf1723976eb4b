/** `deno task rules:check` and `rules:test` as a user runs them: with the task's own permissions. */
import assert from "node:assert/strict";

async function task(name: string, args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["task", "-q", name, ...args],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("deno task rules:check and rules:test read rules kept outside the project", async () => {
  const dir = await Deno.makeTempDir({ prefix: "other-rules-" });
  try {
    await Deno.copyFile("rules/default.yaml", `${dir}/default.yaml`);
    await Deno.mkdir(`${dir}/tests`);
    for await (const f of Deno.readDir("rules/tests")) {
      if (f.isFile) await Deno.copyFile(`rules/tests/${f.name}`, `${dir}/tests/${f.name}`);
    }
    const check = await task("rules:check", [dir]);
    assert.equal(check.code, 0, check.stdout + check.stderr);
    assert.match(check.stdout, /rule\(s\) in 1 file\(s\) OK/);
    const test = await task("rules:test", [dir]);
    assert.doesNotMatch(test.stderr, /NotCapable|Uncaught/);
    assert.match(test.stdout, /\d+ passed, \d+ failed/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deno task rules:check of a missing directory exits 1 with one line naming it", async () => {
  const missing = `${await Deno.makeTempDir()}/nope`;
  try {
    for (const name of ["rules:check", "rules:test"]) {
      const r = await task(name, [missing]);
      assert.equal(r.code, 1, name);
      const lines = (r.stdout + r.stderr).trim().split("\n");
      assert.equal(lines.length, 1, `${name}: ${r.stdout}${r.stderr}`);
      assert.match(lines[0]!, new RegExp(`^Cannot read rules directory "${missing}": `));
    }
  } finally {
    await Deno.remove(missing.replace(/\/nope$/, ""), { recursive: true });
  }
});
