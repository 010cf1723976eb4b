/**
 * `deno task test` runs the tests that run a broker of their own (they stop, kill or freeze it, and
 * mostly wait meanwhile) in a second `deno test` beside the others, found by their name
 * (`*_outage_test.ts`). A test file that starts its own broker under another name would run in the
 * main lane and add its waiting to the suite's time.
 */
import assert from "node:assert/strict";

const TESTS = new URL("../", import.meta.url);

async function* testFiles(dir: URL, path = ""): AsyncGenerator<string> {
  for await (const entry of Deno.readDir(new URL(path, dir))) {
    const child = `${path}${entry.name}`;
    if (entry.isDirectory) yield* testFiles(dir, `${child}/`);
    else if (entry.name.endsWith("_test.ts")) yield child;
  }
}

/** Whether a test file's source starts a broker of its own (through the helpers' `kafkaSh`). */
function ownsBroker(source: string): boolean {
  return /\bkafkaSh\(/.test(source);
}

Deno.test("every test file that runs a broker of its own is named *_outage_test.ts", async () => {
  const misnamed: string[] = [];
  const outage: string[] = [];
  for await (const path of testFiles(TESTS)) {
    const owns = ownsBroker(await Deno.readTextFile(new URL(path, TESTS)));
    if (owns && !path.endsWith("_outage_test.ts")) misnamed.push(`tests/${path}`);
    if (path.endsWith("_outage_test.ts")) outage.push(path);
  }
  assert.deepEqual(
    misnamed,
    [],
    "rename these *_outage_test.ts: `deno task test` runs them beside the others",
  );
  assert.ok(
    outage.length > 0,
    "no *_outage_test.ts file found: scripts/test.sh's second lane would be empty",
  );
  const script = await Deno.readTextFile(new URL("../scripts/test.sh", TESTS));
  assert.match(script, /OUTAGE='tests\/\*\*\/\*_outage_test\.ts'/);
});

Deno.test("the own-broker check recognises a call of kafkaSh, not the word alone", () => {
  const sh = ["kafka", "Sh"].join(""); // assembled, so that this file does not match its own check
  assert.equal(ownsBroker(`const address = await ${sh}(dir, "up");`), true);
  assert.equal(ownsBroker(`import { ${sh} } from "../helpers/kafka.ts";`), false);
});
