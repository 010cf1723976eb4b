import assert from "node:assert/strict";
import { notifyDlqRecord } from "../../src/notifiers/dead_letter.ts";
import { alert } from "../helpers/notifiers.ts";
import { Receiver } from "../helpers/receiver.ts";

const PERMISSIONS: string[] = (() => {
  const tasks = JSON.parse(Deno.readTextFileSync("deno.json")).tasks;
  return (tasks["dlq:replay"] as string).split(/\s+/).filter((a) => a.startsWith("--allow-"));
})();

async function replay(args: string[], env: Record<string, string>) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...PERMISSIONS, "src/notifiers/replay.ts", ...args],
    // The file, not the topic: a broker from the test run must not leak in.
    env: { NO_COLOR: "1", LOG_LEVEL: "warn", KAFKA_BROKERS: "", ...env },
  }).output();
  return { code: out.code, stdout: new TextDecoder().decode(out.stdout) };
}

Deno.test("deno task dlq:replay re-sends dead-lettered notifications from the DLQ file, filtered, with a dry run", async () => {
  const receiver = await Receiver.start(200);
  await Deno.mkdir("tests/artifacts", { recursive: true });
  const dir = await Deno.makeTempDir({ dir: "tests/artifacts", prefix: "replay-" });
  await Deno.writeTextFile(
    `${dir}/notifiers.yaml`,
    'notifiers:\n  - name: hook\n    plugin: webhook\n    options: { url: "${NOTIFY_WEBHOOK_URL}", allow_private_targets: true }\n',
  );
  const co2 = alert();
  const temp = alert({ rule_id: "temperature-out-of-range", sensor_type: "temperature" });
  const failure = { notifier: "hook", plugin: "webhook", attempts: [], error: "Receiver answered 500" };
  const lines = [co2, temp].map((a) =>
    notifyDlqRecord({
      ...failure,
      alert: a,
      notificationId: `${a.alert_id}.firing`,
      deliveryId: `${a.alert_id}.firing`,
    }, {
      alerts: "alerts",
      dlq: "dlq",
    }).value
  );
  await Deno.writeTextFile(`${dir}/dlq.ndjson`, lines.join("\n") + "\n");
  const env = { DLQ_FILE: `${dir}/dlq.ndjson`, NOTIFY_WEBHOOK_URL: receiver.url };
  try {
    const dry = await replay(["--rules", dir, "--rule", "co2-critical", "--dry-run"], env);
    assert.equal(dry.code, 0, dry.stdout);
    assert.match(dry.stdout, /^1 notification\(s\) to re-send/);
    assert.equal(receiver.received.length, 0, "a dry run sends nothing");

    const run = await replay(["--rules", dir, "--rule", "co2-critical", "--notifier", "hook"], env);
    assert.equal(run.code, 0, run.stdout);
    assert.match(run.stdout, /delivered=1 dead_lettered_again=0 skipped=0/);
    assert.equal(receiver.received.length, 1);
    assert.equal(
      receiver.received[0]!.headers.get("webhook-id"),
      `${co2.alert_id}.firing`,
      "the original id",
    );
  } finally {
    await receiver.down();
  }
});
