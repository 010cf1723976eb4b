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
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
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

/** A rules dir whose notifiers.yaml has a webhook `hook`, and a DLQ file holding `records`. */
async function replaySetup(records: (string | null)[]) {
  await Deno.mkdir("tests/artifacts", { recursive: true });
  const dir = await Deno.makeTempDir({ dir: "tests/artifacts", prefix: "replay-" });
  await Deno.writeTextFile(
    `${dir}/notifiers.yaml`,
    'notifiers:\n  - name: hook\n    plugin: webhook\n    options: { url: "${NOTIFY_WEBHOOK_URL}", allow_private_targets: true }\ndelivery: { max_attempts: 1 }\n',
  );
  await Deno.writeTextFile(`${dir}/dlq.ndjson`, records.join("\n") + "\n");
  return { dir, file: `${dir}/dlq.ndjson` };
}

function failed(a: ReturnType<typeof alert>, deliveryId = `${a.alert_id}.firing`) {
  return notifyDlqRecord({
    notifier: "hook",
    plugin: "webhook",
    attempts: [],
    error: "Receiver answered 500",
    alert: a,
    notificationId: `${a.alert_id}.firing`,
    deliveryId,
  }, { alerts: "alerts", dlq: "dlq" }).value;
}

/** The alert ids the receiver got, from single notifications and groups alike. */
const sentIds = (r: Receiver) =>
  r.received.flatMap((x) => {
    const body = JSON.parse(x.body);
    const items: { alert: { alert_id: string } }[] = body.type === "alert.group"
      ? body.notifications
      : [body];
    return items.map((n) => n.alert.alert_id);
  });

Deno.test("dlq:replay run twice delivers each notification once, however often it was dead-lettered", async () => {
  const receiver = await Receiver.start(200);
  const [a, b] = [alert(), alert()];
  // `a` failed, was replayed, failed again: two records for one notification.
  const { dir, file } = await replaySetup([failed(a), failed(b), failed(a)]);
  const env = { DLQ_FILE: file, NOTIFY_WEBHOOK_URL: receiver.url };
  try {
    const first = await replay(["--rules", dir], env);
    assert.equal(first.code, 0, first.stdout);
    assert.deepEqual(sentIds(receiver).sort(), [a.alert_id, b.alert_id].sort());
    const second = await replay(["--rules", dir], env);
    assert.equal(second.code, 0, second.stdout);
    assert.match(
      second.stdout,
      /^0 notification\(s\) to re-send .*\(2 delivered by an earlier replay, skipped\)/,
    );
    assert.equal(receiver.received.length, 2, "nothing sent twice");
  } finally {
    await receiver.down();
  }
});

Deno.test("dlq:replay re-sends a failed group as one notification with the group's delivery id", async () => {
  const receiver = await Receiver.start(200);
  const group = [alert(), alert(), alert()];
  const { dir, file } = await replaySetup(group.map((a) => failed(a, "group.0123456789abcdef01234567")));
  try {
    const run = await replay(["--rules", dir], { DLQ_FILE: file, NOTIFY_WEBHOOK_URL: receiver.url });
    assert.equal(run.code, 0, run.stdout);
    assert.equal(receiver.received.length, 1);
    assert.equal(receiver.received[0]!.headers.get("webhook-id"), "group.0123456789abcdef01234567");
    assert.deepEqual(sentIds(receiver).sort(), group.map((a) => a.alert_id).sort());
  } finally {
    await receiver.down();
  }
});

Deno.test("dlq:replay that fails again says so and where, and leaves one record per notification to re-send", async () => {
  const receiver = await Receiver.start(400);
  const a = alert();
  const { dir, file } = await replaySetup([failed(a)]);
  const env = { DLQ_FILE: file, NOTIFY_WEBHOOK_URL: receiver.url, LOG_LEVEL: "info" };
  try {
    const run = await replay(["--rules", dir], env);
    assert.equal(run.code, 1, run.stdout);
    assert.match(run.stdout, /delivered=0 dead_lettered_again=1 skipped=0/);
    assert.ok(run.stdout.includes(`Dead-lettered again, with their reasons: ${file}`), run.stdout);
    assert.doesNotMatch(run.stdout + run.stderr, /No dead-letter queue is configured/);
    const dry = await replay(["--rules", dir, "--dry-run"], env);
    assert.match(dry.stdout, /^1 notification\(s\) to re-send/);
  } finally {
    await receiver.down();
  }
});

Deno.test("deno task dlq:replay answers a wrong option or variable with one line and its usage, exit 2", async () => {
  const unknown = await replay(["--bogus"], {});
  assert.equal(unknown.code, 2);
  assert.match(unknown.stdout, /^Unknown option '--bogus'.*\n\nUsage: deno task dlq:replay/);
  assert.equal(unknown.stderr, "");
  const kafka = await replay([], { KAFKA_BROKERS: "127.0.0.1:1", KAFKA_SSL: "maybe" });
  assert.equal(kafka.code, 2);
  assert.match(kafka.stdout, /^KAFKA_SSL must be one of true, 1, false, 0, got "maybe"\n/);
});
