/**
 * The notifier stage of a service without a broker (a replay, the embedded simulator): its summary,
 * and notifiers.yaml problems at startup and while running. Against the broker: tests/integration/.
 */
import assert from "node:assert/strict";
import type { SensorEventInput } from "../../src/contract/schemas.ts";
import { event } from "../helpers/events.ts";
import { waitFor } from "../helpers/kafka.ts";
import { scrape } from "../helpers/metrics.ts";
import { Receiver } from "../helpers/receiver.ts";
import { httpUrl, startService } from "../helpers/service.ts";

/** A rules dir whose notifiers.yaml is `yaml`. */
async function notifiersDir(yaml: string): Promise<string> {
  await Deno.mkdir("tests/artifacts", { recursive: true });
  const dir = await Deno.makeTempDir({ dir: "tests/artifacts", prefix: "notify-it-" });
  await Deno.writeTextFile(`${dir}/notifiers.yaml`, yaml);
  return dir;
}

/** Event `i` is the first of its own sensor's episode, out of range: exactly one firing alert. */
function outOfRange(prefix: string, i: number): SensorEventInput {
  return event({
    event_id: `${prefix}-${i}`,
    sensor_id: `${prefix}-temp-${i}`,
    value: 50,
    timestamp: new Date(Date.UTC(2026, 10, 25, 21, 0, 0) + i * 1000).toISOString(),
  });
}

Deno.test("a replay whose notifications are dead-lettered says how many and where in its summary", async () => {
  const receiver = await Receiver.start(400);
  const dir = await notifiersDir(`notifiers:
  - { name: hook, plugin: webhook, options: { url: "${receiver.url}/hook", allow_private_targets: true } }
default_receivers: [hook]
`);
  await Deno.copyFile("rules/default.yaml", `${dir}/default.yaml`);
  await Deno.writeTextFile(
    `${dir}/input.ndjson`,
    [1, 2].map((i) => JSON.stringify(outOfRange("d", i))).join("\n") + "\n",
  );
  const service = startService({ KAFKA_BROKERS: "", RULES_DIR: dir, DLQ_FILE: `${dir}/dlq.ndjson` }, [
    "--input",
    `${dir}/input.ndjson`,
  ]);
  try {
    const status = await service.child.status;
    assert.equal(status.code, 0, service.stderr().slice(-2000));
    assert.match(service.stdout(), /notifications_dead_lettered=2/);
    assert.ok(
      service.stdout().includes(`Dead-lettered messages with their reasons: ${dir}/dlq.ndjson`),
      service.stdout().slice(-1000),
    );
    assert.equal(receiver.received.length, 2);
  } finally {
    await receiver.down();
  }
});

Deno.test("an invalid notifiers.yaml at startup stops the service with one clear line", async () => {
  const dir = await notifiersDir("routes:\n  - receivers: [nobody]\n");
  const service = startService({ KAFKA_BROKERS: "", RULES_DIR: dir }, ["--rate", "1"]);
  const status = await service.child.status;
  const output = service.stdout() + service.stderr();
  assert.equal(status.code, 1, output.slice(-2000));
  assert.doesNotMatch(output, /Uncaught|ZodError| {4}at /);
  const lines = output.split("\n").filter((l) => l.includes("Unknown notifier"));
  assert.equal(lines.length, 1, output.slice(-2000));
  assert.match(lines[0]!, /notifiers\.yaml:2:17 .*Unknown notifier \\"nobody\\"/);
});

Deno.test("a notifiers.yaml broken while running shows in /api/rules and /metrics with file:line, until fixed", async () => {
  const good =
    "notifiers:\n  - { name: hook, plugin: webhook, options: { url: http://127.0.0.1:9/h, allow_private_targets: true } }\n";
  const dir = await notifiersDir(good);
  await Deno.copyFile("rules/default.yaml", `${dir}/default.yaml`);
  const service = startService({ KAFKA_BROKERS: "", RULES_DIR: dir }, ["--rate", "1"]);
  try {
    const base = await httpUrl(service);
    const rules = async () => await (await fetch(`${base}/api/rules`)).json();
    const problems = async () =>
      Number((await scrape(base)).value("sensor_notifier_config_problems") ?? Number.NaN);
    // The HTTP server answers before the service is attached.
    await waitFor("the rules view", async () => (await rules()).ok === true, 20_000);
    assert.equal(await problems(), 0);

    await Deno.writeTextFile(`${dir}/notifiers.yaml`, good + "routes:\n  - receivers: [nobody]\n");
    const view = await waitFor("the problem in /api/rules", async () => {
      const v = await rules();
      return v.ok === false && v;
    }, 20_000);
    assert.equal(view.notifiers.current, false);
    const error = view.errors.find((e: { file: string }) => e.file.endsWith("notifiers.yaml"));
    assert.equal(error.location, `${dir}/notifiers.yaml:4:17`);
    assert.match(error.text, /Unknown notifier "nobody"/);
    assert.equal(await problems(), 1);
    // A save may reach the watcher as more than one change: at least one load found the problem.
    const reloadErrors = (await scrape(base)).value("sensor_notifier_config_reload_errors_total") ?? 0;
    assert.ok(reloadErrors >= 1, `reload errors: ${reloadErrors}`);

    await Deno.writeTextFile(`${dir}/notifiers.yaml`, good);
    await waitFor("the problem gone", async () => (await rules()).ok === true, 20_000);
    assert.equal(await problems(), 0);
  } finally {
    await service.stop("SIGTERM");
  }
});
