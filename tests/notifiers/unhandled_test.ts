/**
 * An error nobody handled in the service's main thread (src/notifiers/unhandled.ts): a plugin's stray promise
 * is logged and the service keeps running; one of the service's own ends it with one line.
 */
import assert from "node:assert/strict";
import { onUnhandled, originOf, unhandledCounts } from "../../src/notifiers/unhandled.ts";
import { event } from "../helpers/events.ts";
import { scrape } from "../helpers/metrics.ts";
import { httpUrl, startService } from "../helpers/service.ts";
import { captureLogger } from "../helpers/notifiers.ts";

Deno.test("a plugin's stray rejections (at import and in notify) and its timer's exception are logged once each, and the service keeps running", async () => {
  await Deno.mkdir("tests/artifacts", { recursive: true });
  const dir = await Deno.makeTempDir({ dir: "tests/artifacts", prefix: "stray-" });
  const pluginsDir = `${dir}/plugins`;
  await Deno.mkdir(pluginsDir);
  for (const name of ["console.ts", "dlq.ts"]) {
    await Deno.copyFile(`plugins/${name}`, `${pluginsDir}/${name}`);
  }
  await Deno.writeTextFile(
    `${pluginsDir}/stray.ts`,
    `import { z } from "zod";
import { defineNotifier } from "@sensor-rules/engine/plugin";

// Background work started at import that fails later, with nobody to tell.
setTimeout(() => Promise.reject(new Error("stray at import")), 100);
setTimeout(() => {
  throw new Error("thrown at import");
}, 100);

export default defineNotifier({
  apiVersion: 1,
  name: "stray",
  options: z.object({}),
  create: () => ({
    notify() {
      // A promise left behind by a delivery that itself succeeds.
      Promise.reject(new Error("stray in notify"));
      return Promise.resolve();
    },
  }),
});
`,
  );
  await Deno.writeTextFile(
    `${dir}/notifiers.yaml`,
    "notifiers:\n  - { name: s, plugin: stray }\ndefault_receivers: [s]\n",
  );
  await Deno.copyFile("rules/default.yaml", `${dir}/default.yaml`);
  const service = startService(
    { KAFKA_BROKERS: "", RULES_DIR: dir, PLUGINS_DIR: pluginsDir, DLQ_FILE: `${dir}/dlq.ndjson` },
    ["--input", "-"],
    { stdin: "piped" },
  );
  try {
    const base = await httpUrl(service);
    const thrown = await service.waitForLine(/thrown at import/);
    assert.match(thrown, /Uncaught exception in plugin \\"stray\\", kept running: Error: thrown at import/);
    const atImport = await service.waitForLine(/stray at import/);
    assert.match(atImport, /Unhandled promise rejection in plugin \\"stray\\", kept running/);
    assert.match(atImport, /"plugin":"stray"/);
    const early = await scrape(base);
    assert.equal(early.value("sensor_unhandled_errors_total", { plugin: "stray", kind: "rejection" }), 1);
    assert.equal(early.value("sensor_unhandled_errors_total", { plugin: "stray", kind: "exception" }), 1);
    // Still running: the replay reads its input. An out-of-range event's alert goes to the plugin,
    // whose notify leaves the second rejection. A replay hands on 500 lines at a time (or at the end
    // of its input), so 500 events, of one sensor in one episode: one alert.
    const lines = Array.from({ length: 500 }, (_, i) =>
      JSON.stringify(event({
        event_id: `stray-${i}`,
        value: 50,
        timestamp: new Date(Date.UTC(2026, 10, 25, 21, 0, 0) + i * 1000).toISOString(),
      })) + "\n");
    const writer = service.child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(lines.join("")));
    await service.waitForLine(/stray in notify/);
    assert.equal(
      (await scrape(base)).value("sensor_unhandled_errors_total", { plugin: "stray", kind: "rejection" }),
      2,
    );
    await writer.close();
    const status = await service.child.status;
    const output = service.stdout() + service.stderr();
    assert.equal(status.code, 0, output.slice(-3000));
    // Deno's own report of an unhandled error ("error: Uncaught (in promise) …") and its trace.
    assert.doesNotMatch(output, /error: Uncaught|\n {4}at /);
    assert.match(service.stdout(), /alerts=1 /);
    assert.equal(
      output.split("\n").filter((l) => l.includes("stray at import")).length,
      1,
      output.slice(-3000),
    );
    assert.equal(
      output.split("\n").filter((l) => l.includes("stray in notify")).length,
      1,
      output.slice(-3000),
    );
  } finally {
    await service.child.stdin.close().catch(() => {});
    await service.stop().catch(() => {});
  }
});

/** An error as thrown at `file`: its stack names only that module. */
function thrownAt(file: string, message = "boom"): Error {
  const e = new Error(message);
  e.stack = `Error: ${message}\n    at run (${
    new URL(file, new URL("../../", import.meta.url)).href
  }:12:7)\n    at ext:core/01_core.js:1:1`;
  return e;
}

Deno.test("an unhandled error of the service's own code ends the process with exit code 1 and one line", () => {
  const { logger, lines } = captureLogger();
  const exits: number[] = [];
  const opts = { logger, started: () => true, exit: (code: number) => void exits.push(code) };
  assert.equal(onUnhandled("rejection", thrownAt("src/notifiers/dispatcher.ts"), opts), false);
  assert.deepEqual(exits, [1]);
  assert.equal(lines.length, 1);
  assert.match(
    lines[0]!,
    /Unhandled promise rejection in the service's own code \(a bug\): Error: boom; exiting/,
  );
  assert.match(lines[0]!, /src\/notifiers\/dispatcher\.ts:12:7/);
  // During start-up the line says the start failed, as every other start-up failure does.
  onUnhandled("exception", thrownAt("main.ts"), { ...opts, started: () => false });
  assert.deepEqual(exits, [1, 1]);
  assert.match(lines[1]!, /"msg":"Cannot start: Uncaught exception in the service's own code/);
});

Deno.test("an unhandled error without a file of the service (a string, an un-awaited fetch) keeps it running, counted", () => {
  const { logger, lines } = captureLogger();
  const opts = { logger, started: () => true, exit: () => assert.fail("must not exit") };
  assert.deepEqual(originOf("a string"), { by: "plugin", plugin: "unknown", at: null });
  // Only the plugin API's frames: it ran on a plugin's behalf.
  assert.equal(originOf(thrownAt("src/notifiers/plugin.ts")).by, "plugin");
  const before = unhandledCounts().find((c) => c.plugin === "unknown" && c.kind === "rejection")?.count ?? 0;
  for (let i = 0; i < 12; i++) {
    assert.equal(onUnhandled("rejection", new TypeError("fetch failed"), opts), true);
  }
  const after = unhandledCounts().find((c) => c.plugin === "unknown" && c.kind === "rejection")!.count;
  assert.equal(after - before, 12);
  // Counted exactly, logged at the 1st and the 10th: a plugin cannot flood the log.
  assert.equal(before, 0, "no other test of this file counts unknown rejections");
  assert.equal(lines.length, 2, lines.join("\n"));
  assert.match(lines[0]!, /of unknown origin .*kept running: TypeError: fetch failed/);
});
