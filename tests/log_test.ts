import assert from "node:assert/strict";
import { createLogger } from "../src/log.ts";

// deno-lint-ignore no-control-regex
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

Deno.test("createLogger() on a terminal shows control characters of a message and its fields as escapes", () => {
  const lines: string[] = [];
  const logger = createLogger({ level: "debug", sink: { write: (l) => lines.push(l), pretty: true } });
  const hostile = "s\x1b]0;pwned\x07\x1b[2J\u009b\u202e\nforged";
  logger.warn(`Event ${hostile} refused`, {
    sensor_id: hostile,
    err: new Error(hostile),
    nested: { v: hostile },
  });
  assert.equal(lines.length, 1);
  // The logger's own colour code for the level is the only escape sequence left.
  // deno-lint-ignore no-control-regex
  const line = lines[0]!.replace(/\x1b\[(33|0)m/g, "");
  assert.ok(!UNSAFE.test(line), JSON.stringify(line));
  assert.ok(line.includes("\\x1b]0;pwned"), "still visible as text");
});
