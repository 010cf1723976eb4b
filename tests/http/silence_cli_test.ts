/**
 * `deno task silence` against a running service (embedded, no broker), run with the task's own
 * permissions: add, list, extend and expire through the HTTP API; a wrong matcher is a usage error
 * (exit 2), a refused write an API error (exit 1), in one line.
 */
import assert from "node:assert/strict";
import { describeSilence, parseMatcher } from "../../src/http/silence_cli.ts";
import { httpUrl, startService } from "../helpers/service.ts";
import { waitFor } from "../helpers/kafka.ts";

const TOKEN = "tok-0c4d8e2a6f1b9d37";

/** The permissions of `deno task silence`, so the test proves the task grants enough. */
const PERMISSIONS: string[] = (() => {
  const tasks = JSON.parse(Deno.readTextFileSync(new URL("../../deno.json", import.meta.url))).tasks;
  return (tasks.silence as string).split(/\s+/).filter((a) => a.startsWith("--allow-"));
})();

async function silence(
  env: Record<string, string>,
  ...args: string[]
): Promise<{ code: number; out: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...PERMISSIONS, "src/http/silence_cli.ts", ...args],
    env: { NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder();
  return { code: out.code, out: text.decode(out.stdout) + text.decode(out.stderr) };
}

Deno.test("parseMatcher() reads the four operators of amtool", () => {
  assert.deepEqual(parseMatcher("sensor_id=temp-*"), {
    name: "sensor_id",
    value: "temp-*",
    is_regex: false,
    is_equal: true,
  });
  assert.deepEqual(parseMatcher("rule_id!=co2"), {
    name: "rule_id",
    value: "co2",
    is_regex: false,
    is_equal: false,
  });
  assert.deepEqual(parseMatcher("location=~Building A.*"), {
    name: "location",
    value: "Building A.*",
    is_regex: true,
    is_equal: true,
  });
  assert.deepEqual(parseMatcher("labels.team!~safe=ty"), {
    name: "labels.team",
    value: "safe=ty",
    is_regex: true,
    is_equal: false,
  });
  assert.throws(() => parseMatcher("sensor_id"), /must be name=value/);
});

Deno.test("deno task silence adds, lists, extends and expires silences through the HTTP API", async () => {
  await Deno.mkdir("tests/artifacts", { recursive: true });
  const dir = await Deno.makeTempDir({ dir: "tests/artifacts", prefix: "silence-cli-" });
  const service = startService(
    { KAFKA_BROKERS: "", API_TOKEN: TOKEN, SILENCES_FILE: `${dir}/silences.json` },
    ["--rate", "5", "--seed", "1"],
  );
  try {
    const base = await httpUrl(service);
    await waitFor("the API", async () => (await fetch(`${base}/api/silences`)).status === 200);
    const env = { SILENCES_API_URL: base, API_TOKEN: TOKEN };

    const added = await silence(
      env,
      "add",
      "sensor_id=temp-*",
      "rule_id!~co2.*",
      "--for",
      "2h",
      "--by",
      "cli-test",
      "--comment",
      "recalibration",
    );
    assert.equal(added.code, 0, added.out);
    const id = added.out.split(/\s+/)[0]!;
    assert.match(
      added.out,
      /active +until .* sensor_id=temp-\* rule_id!~co2\.\* +\(cli-test: recalibration\)/,
    );
    const { silence: created } = await (await fetch(`${base}/api/silences/${id}`)).json();
    const hours = (Date.parse(created.ends_at) - Date.parse(created.starts_at)) / 3600_000;
    assert.ok(hours > 1.9 && hours <= 2, `lasts ${hours} h`);

    const listed = await silence(env, "list");
    assert.equal(listed.code, 0, listed.out);
    assert.match(listed.out, new RegExp(`^${id} +active`, "m"));

    const extended = await silence(env, "extend", id, "--for", "5h");
    assert.equal(extended.code, 0, extended.out);
    const { silence: longer } = await (await fetch(`${base}/api/silences/${id}`)).json();
    assert.ok(Date.parse(longer.ends_at) > Date.parse(created.ends_at));

    const expired = await silence(env, "expire", id);
    assert.equal(expired.code, 0, expired.out);
    assert.match(expired.out, new RegExp(`^${id} +expired`));

    const usage = await silence(env, "add", "sensor_id", "--by", "x", "--comment", "y");
    assert.equal(usage.code, 2);
    assert.match(usage.out, /Matcher "sensor_id" must be name=value/);
    const missing = await silence(env, "add", "sensor_id=x");
    assert.equal(missing.code, 2);
    assert.match(missing.out, /--by and --comment/);

    const refused = await silence(
      { SILENCES_API_URL: base, API_TOKEN: "tok-wrong-wrong-wrong" },
      "expire",
      id,
    );
    assert.equal(refused.code, 1);
    assert.equal(refused.out.trim(), `DELETE /api/silences/${id} answered 401: Wrong bearer token`);
    const bad = await silence(env, "add", "sensor_id=~(", "--by", "x", "--comment", "y");
    assert.equal(bad.code, 1);
    assert.match(bad.out, /answered 400: Field "matchers\.0\.value"/);
  } finally {
    assert.equal((await service.stop()).code, 0, service.stderr().slice(-2000));
  }
});

Deno.test("describeSilence() shows a silence's control characters as escapes: a comment cannot erase or forge lines", () => {
  const line = describeSilence({
    id: "s-1",
    matchers: [{ name: "sensor_id", value: "temp-\u202e1", is_regex: false, is_equal: true }],
    starts_at: "2026-12-01T00:00:00.000Z",
    ends_at: "2026-12-01T02:00:00.000Z",
    created_by: "ana\nb1f0  active  until 2026-12-01T02:00:00.000Z  sensor_id=x  (ops: fake)",
    comment: "\r\u001b[2Kgone",
    updated_at: "2026-12-01T00:00:00.000Z",
    status: "active",
  });
  // deno-lint-ignore no-control-regex
  assert.doesNotMatch(line, /[\u0000-\u001f\u007f-\u009f\u202e]/);
  assert.ok(line.includes("\\r\\x1b[2Kgone"), line);
  assert.ok(line.includes("ana\\nb1f0"), line);
});
