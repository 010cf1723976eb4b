import assert from "node:assert/strict";
import { formatJson, formatPretty } from "../../plugins/console.ts";
import { alert } from "../helpers/notifiers.ts";

/** Characters a terminal acts on, or that reorder or break the line it shows. */
const HOSTILE: [string, string][] = [
  ["a newline", "\n"],
  ["a carriage return", "\r"],
  ["an ANSI colour", "\x1b[31m"],
  ["an OSC title (ESC ] … BEL)", "\x1b]0;pwned\x07"],
  ["a bell", "\x07"],
  ["a NUL", "\0"],
  ["DEL", "\x7f"],
  ["the C1 CSI", "\u009b"],
  ["a right-to-left override", "\u202e"],
  ["a bidi isolate", "\u2066"],
  ["a line separator", "\u2028"],
];

/** Anything a terminal would act on, left in the output. */
// deno-lint-ignore no-control-regex
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

for (const [what, chars] of HOSTILE) {
  Deno.test(`console: ${what} in event fields is shown escaped, on one line`, () => {
    const a = alert({
      sensor_id: `s${chars}1`,
      message: `CO2 high${chars}2026-01-01T00:00:00Z CRITICAL [forged] line`,
      rule_id: `r${chars}`,
      alert_id: `id${chars}`,
      timestamp: `t${chars}`,
    });
    for (const line of [formatPretty({ id: "n", alert: a }, false), formatJson({ id: "n", alert: a })]) {
      assert.ok(!UNSAFE.test(line), `raw control in ${JSON.stringify(line)}`);
    }
    const pretty = formatPretty({ id: "n", alert: a }, false);
    assert.ok(pretty.includes("\\"), "the characters are still visible as escapes");
    assert.deepEqual(
      JSON.parse(formatJson({ id: "n", alert: a })).sensor_id,
      a.sensor_id,
      "JSON keeps the value",
    );
  });
}

Deno.test("console: the colour codes the plugin adds itself are kept", () => {
  const line = formatPretty({ id: "n", alert: alert() }, true);
  assert.ok(line.includes("\x1b[1;31mCRITICAL\x1b[0m"));
});
