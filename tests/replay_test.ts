/** `deno task start --input FILE` as a user types it: its exit code and its one line when it cannot read. */
import assert from "node:assert/strict";

async function start(args: string[], stdin?: string, env: Record<string, string> = {}) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["task", "-q", "start", ...args],
    env: { KAFKA_BROKERS: "", HTTP_PORT: "0", NO_COLOR: "1", LOG_LEVEL: "info", ...env },
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
    await w.close();
  }
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

function errorLines(stderr: string): string[] {
  return stderr.split("\n").filter((l) => l.includes('"level":"error"'));
}

function assertNoStack(stderr: string): void {
  assert.doesNotMatch(stderr, /^\s+at |Uncaught|NotCapable/m, stderr);
}

const hot = JSON.stringify({
  event_id: "r-1",
  sensor_id: "temp-001",
  sensor_type: "temperature",
  value: 50,
  unit: "°C",
  timestamp: "2026-11-25T21:00:00Z",
});

Deno.test("deno task start --input of a missing file exits 1 with one line naming the file", async () => {
  const r = await start(["--input", "no-such-file.ndjson"]);
  assert.equal(r.code, 1, r.stderr);
  const errors = errorLines(r.stderr);
  assert.equal(errors.length, 1, r.stderr);
  assert.match(JSON.parse(errors[0]!).msg, /^Cannot read --input "no-such-file\.ndjson": no such file$/);
  assertNoStack(r.stderr);
});

Deno.test("deno task start --input of a file outside the project is refused with the --input - alternative, which works", async () => {
  const dir = await Deno.makeTempDir({ prefix: "outside-" });
  try {
    const path = `${dir}/events.ndjson`;
    await Deno.writeTextFile(path, hot + "\n");
    const refused = await start(["--input", path]);
    assert.equal(refused.code, 1, refused.stderr);
    const errors = errorLines(refused.stderr);
    assert.equal(errors.length, 1, refused.stderr);
    assert.equal(
      JSON.parse(errors[0]!).msg,
      `Cannot read --input "${path}": deno task start may read only the project directory; ` +
        `pipe the file in instead: deno task start --input - < ${path}`,
    );
    assertNoStack(refused.stderr);
    const piped = await start(["--input", "-"], await Deno.readTextFile(path));
    assert.equal(piped.code, 0, piped.stderr);
    assert.match(piped.stdout, /"rule_id":"temperature-out-of-range"/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a replay whose source fails while reading exits 1 with one line", async () => {
  // A directory opens, and fails at the first read.
  const r = await start(["--input", "rules"]);
  assert.equal(r.code, 1, r.stderr);
  const errors = errorLines(r.stderr);
  assert.equal(errors.length, 1, r.stderr);
  assert.match(JSON.parse(errors[0]!).msg, /^Replay of "rules" failed: /);
  assertNoStack(r.stderr);
});

Deno.test("a replay whose rules directory is missing exits 1 with one line naming it", async () => {
  const r = await start(["--input", "-"], hot + "\n", { RULES_DIR: "no-such-rules" });
  assert.equal(r.code, 1, r.stderr);
  const errors = errorLines(r.stderr);
  assert.equal(errors.length, 1, r.stderr);
  assert.match(JSON.parse(errors[0]!).msg, /^Cannot start: .*no-such-rules/);
  assertNoStack(r.stderr);
});
