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

Deno.test("deno task rules:test runs a file with rules_dir against that directory's rules and limits", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rules-dir-" });
  try {
    await Deno.mkdir(`${dir}/tests`);
    await Deno.mkdir(`${dir}/examples`);
    await Deno.writeTextFile(`${dir}/default.yaml`, "rules: []\n");
    await Deno.writeTextFile(
      `${dir}/examples/band.yaml`,
      "rules:\n  - { id: band, limits: t, priority: low }\nlimits:\n  t:\n    sensor_id: { s1: { max: 5 } }\n",
    );
    const test = (threshold: number) =>
      `rules_dir: ../examples\ntests:\n  - name: own band\n    events: [{ at: 0s, sensor_id: s1, value: 6 }]\n` +
      `    expect: { alerts: [{ at: 0s, rule: band, threshold: ${threshold} }] }\n`;
    await Deno.writeTextFile(`${dir}/tests/examples.yaml`, test(5));
    const ok = await task("rules:test", [dir]);
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    assert.match(ok.stdout, /1 passed, 0 failed/);

    await Deno.writeTextFile(`${dir}/tests/examples.yaml`, test(4));
    const failed = await task("rules:test", [dir]);
    assert.equal(failed.code, 1);
    assert.match(failed.stdout, /0 passed, 1 failed/);

    // A problem in the other directory is a failure of its tests' file.
    await Deno.writeTextFile(
      `${dir}/examples/band.yaml`,
      "rules:\n  - { id: band, limits: nowhere, priority: low }\n",
    );
    const broken = await task("rules:test", [dir]);
    assert.equal(broken.code, 1);
    assert.match(broken.stdout, /band\.yaml:2:5 band: No limits table named "nowhere"/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
