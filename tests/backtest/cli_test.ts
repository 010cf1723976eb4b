import assert from "node:assert/strict";
import { parseWhen } from "../../src/backtest/cli.ts";
import { ndjson, recording, runBacktest, shippedRulesDir } from "./_recording.ts";

const T0 = Date.UTC(2026, 0, 1);

Deno.test("backtest prints a text table per rule, with sensor ids made safe for the terminal", async () => {
  const rules = await shippedRulesDir();
  try {
    const evil = JSON.stringify({
      event_id: "evil-1",
      // U+009B is a one-character CSI: decode refuses C0 controls in ids (ESC among them), not C1.
      sensor_id: "t\u009b2Jx",
      sensor_type: "temperature",
      value: 99,
      unit: "°C",
      timestamp: new Date(T0 + 5_000).toISOString(),
    });
    const out = await runBacktest(["--input", "-", "--rules", rules, "--rule", "temperature-out-of-range"], {
      stdin: ndjson(recording(T0)) + evil + "\n",
    });
    assert.equal(out.code, 0, out.stdout + out.stderr);
    assert.match(out.stdout, /^Backtest of stdin: 511 records, 509 events from 2026-01-01T00:00:00\.000Z/);
    const row = out.stdout.split("\n").find((l) => l.startsWith("temperature-out-of-range"));
    assert.match(row ?? "", /^temperature-out-of-range\s+high\s+3 \(1 open\)\s+3\s+0\s+2\s+/);
    // The control characters are what the test looks for.
    // deno-lint-ignore no-control-regex
    assert.ok(!/[\x1b\u009b]/.test(out.stdout), "no escape sequence from an event reaches the terminal");
    assert.ok(out.stdout.includes("t\\x9b2Jx"));
    // --rule: the other rules are not run.
    assert.ok(!out.stdout.includes("co2-average-high"));
  } finally {
    await Deno.remove(rules, { recursive: true });
  }
});

Deno.test("backtest --json reports time firing, time to fire after the first breach, and the busiest sensors", async () => {
  const rules = await shippedRulesDir();
  try {
    const out = await runBacktest(["--input", "-", "--json", "--rules", rules], {
      stdin: ndjson(recording(T0)),
    });
    assert.equal(out.code, 0, out.stdout + out.stderr);
    const report = JSON.parse(out.stdout);
    const rule = (id: string) => report.rules.find((r: { rule_id: string }) => r.rule_id === id);
    // temp-2 is at 31 from 200 s to 510 s: pending at 200 s, fires 20 s later, repeats every minute
    // (280, 340, 400, 460 s), clears at 510 s and resolves 20 s later.
    const hot = rule("temperature-hot-repeat");
    assert.deepEqual(hot.alerts, { firing: 2, repeats: 4, resolved: 2 });
    assert.deepEqual(hot.time_to_fire_seconds, { avg: 20, max: 20 });
    assert.deepEqual(hot.busiest.map((b: { group: string }) => b.group), ["temp-2", "temp-1"]);
    const temp2 = report.episodes.find((e: { group: string; rule_id: string }) =>
      e.group === "temp-2" && e.rule_id === "temperature-hot-repeat"
    );
    assert.equal(temp2.first_breach, new Date(T0 + 200_000).toISOString());
    assert.equal(temp2.start, new Date(T0 + 220_000).toISOString());
    assert.equal(temp2.end, new Date(T0 + 530_000).toISOString());
    assert.equal(temp2.repeats, 4);
    assert.equal(temp2.firing_seconds, 310);
    // The sentinel's episode is open at the end of the input: it fires at its last event.
    assert.equal(rule("humidity-out-of-range").open, 1);
    assert.deepEqual(report.totals.by_priority.low, { firing: 6, resolved: 2 });
    assert.equal(report.input.late_events, 1);
    assert.equal(report.input.duplicates, 1);
    assert.equal(report.input.dead_lettered, 1);
  } finally {
    await Deno.remove(rules, { recursive: true });
  }
});

Deno.test("backtest stops on Ctrl-C and prints what it has read so far", async () => {
  const rules = await shippedRulesDir();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "src/backtest/cli.ts", "--input", "-", "--json", "--rules", rules],
    env: { LOG_LEVEL: "debug", NO_COLOR: "1" },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  try {
    const lines = ndjson(recording(T0)).split("\n");
    // 500 lines are a batch; stdin stays open, so only Ctrl-C ends the backtest.
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(lines.slice(0, 500).join("\n") + "\n"));
    let err = "";
    const decoder = new TextDecoder();
    const reader = child.stderr.getReader();
    for (
      let i = 0;
      i < 1000 && !/"msg":"Backtest progress","stage":"backtest","records":500/.test(err);
      i++
    ) {
      const { value, done } = await reader.read();
      if (done) break;
      err += decoder.decode(value);
    }
    assert.match(err, /Backtest progress/);
    reader.releaseLock();
    // A backtest that did not stop would wait on stdin for ever: bounded, it then fails on its code.
    const guard = setTimeout(() => child.kill("SIGKILL"), 30_000);
    child.kill("SIGINT");
    const [status, stdout] = await Promise.all([
      child.status,
      new Response(child.stdout).text(),
      child.stderr.cancel(),
    ]);
    clearTimeout(guard);
    assert.equal(status.code, 130);
    const report = JSON.parse(stdout);
    assert.equal(report.input.interrupted, true);
    assert.equal(report.input.records, 500);
    assert.ok(report.alerts.length > 0, "the alerts of what was read");
    await writer.close().catch(() => {});
  } finally {
    await Deno.remove(rules, { recursive: true });
  }
});

Deno.test("backtest refuses --from with --input, an unknown --rule, a page it cannot write and a bad time, naming them", async () => {
  const both = await runBacktest(["--input", "-", "--from", "1h"]);
  assert.equal(both.code, 2);
  assert.match(both.stdout, /^--from and --to read the events topic: leave them out with --input/);
  const rule = await runBacktest(["--input", "-", "--rule", "no-such-rule"], { stdin: "" });
  assert.equal(rule.code, 1);
  assert.match(rule.stdout, /--rule: no rule "no-such-rule" in "rules"/);
  const html = await runBacktest(["--input", "-", "--html", "/no-such-dir/report.html"], { stdin: "" });
  assert.equal(html.code, 1);
  assert.match(
    html.stdout,
    /^Cannot write --html "\/no-such-dir\/report\.html": no such directory "\/no-such-dir"/,
  );
  assert.throws(
    () => parseWhen("from", "yesterday"),
    /--from must be an ISO time or a duration like "24h", got "yesterday"/,
  );
  assert.equal(parseWhen("to", "24h", Date.UTC(2026, 0, 2)), Date.UTC(2026, 0, 1));
  assert.equal(parseWhen("from", "2026-01-01T00:00:00Z"), Date.UTC(2026, 0, 1));
});

Deno.test("backtest shows events read and events/s on stderr when it is a terminal, and nothing when it is not", async () => {
  const rules = await shippedRulesDir();
  const file = `${rules}/events.ndjson`;
  try {
    await Deno.writeTextFile(file, ndjson(recording(T0)));
    const cmd = [
      Deno.execPath(),
      "run",
      "--allow-all",
      "src/backtest/cli.ts",
      "--input",
      file,
      "--rules",
      rules,
    ]
      .map((a) => `'${a}'`).join(" ");
    // util-linux `script` runs the command on a pseudo-terminal: what an operator sees.
    const tty = await new Deno.Command("script", {
      args: ["-qec", cmd, "/dev/null"],
      env: { NO_COLOR: "1", LOG_LEVEL: "warn" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const seen = new TextDecoder().decode(tty.stdout);
    assert.equal(tty.code, 0, seen);
    // A progress line that rewrites itself: carriage return, erase line (ESC [2K), the count and rate.
    const progress = new RegExp(String.raw`\r${"\x1b"}\[2K510 events read, \d+ events/s`);
    assert.match(seen, progress);
    const piped = await runBacktest(["--input", file, "--rules", rules]);
    assert.equal(piped.code, 0);
    assert.ok(!piped.stderr.includes("events read"), piped.stderr);
  } finally {
    await Deno.remove(rules, { recursive: true });
  }
});
