import assert from "node:assert/strict";
import { DeliveryError } from "../../src/notifiers/plugin.ts";
import type { OutRecord } from "../../src/transport/output.ts";
import slack, { clip, message } from "../../plugins/slack.ts";
import type { SensorAlert } from "../../src/notifiers/plugin.ts";
import webhook from "../../plugins/webhook.ts";
import { alert, captureLogger, dispatcher, failureOf, instance, notifyOnce } from "../helpers/notifiers.ts";
import { type Answer, Receiver } from "../helpers/receiver.ts";

const TABLE: [string, Answer, null | Partial<DeliveryError>][] = [
  ["200", 200, null],
  ["400 invalid_payload", 400, { reason: "client", retryable: false, status: 400 }],
  ["410 channel_is_archived", 410, { reason: "client", retryable: false, status: 410 }],
  ["429 with Retry-After", { status: 429, headers: { "retry-after": "2" } }, {
    reason: "rate-limited",
    retryable: true,
    retryAfterMs: 2000,
  }],
  ["500", 500, { reason: "server", retryable: true }],
  ["a redirect", { status: 301, headers: { location: "http://127.0.0.1:1/" } }, {
    reason: "client",
    retryable: false,
  }],
  ["a hang past the timeout", "hang", { reason: "timeout", retryable: true }],
];

for (const [what, answer, expected] of TABLE) {
  Deno.test(`slack: a receiver answering ${what} → ${expected === null ? "delivered" : expected.reason}`, async () => {
    const receiver = await Receiver.start(answer);
    const { logger } = captureLogger();
    try {
      const inst = await instance(slack, "slack", {
        url: `${receiver.url}/services/T0/B0/x`,
        timeout_ms: 300,
        allow_private_targets: true,
      }, logger);
      const err = await failureOf(notifyOnce(inst, [{ id: "n", alert: alert() }]));
      if (expected === null) assert.equal(err, null);
      else {
        assert.ok(err instanceof DeliveryError);
        for (const [k, v] of Object.entries(expected)) assert.equal(err[k as keyof DeliveryError], v, k);
      }
      assert.equal(receiver.received.length, 1);
    } finally {
      await receiver.down();
    }
  });
}

Deno.test("slack: a firing alert is a Block Kit message with colour, emoji and every field", async () => {
  const receiver = await Receiver.start(200);
  const { logger } = captureLogger();
  try {
    const inst = await instance(slack, "slack", { url: receiver.url, allow_private_targets: true }, logger);
    await notifyOnce(inst, [{ id: "n", alert: alert() }]);
    const body = JSON.parse(receiver.received[0]!.body);
    assert.match(body.text, /^CRITICAL: CO2 at co2-001/);
    const att = body.attachments[0];
    assert.equal(att.color, "#d00000");
    assert.match(att.blocks[0].text.text, /^:red_circle: \*CRITICAL\*/);
    const fields = att.blocks[1].fields.map((f: { text: string }) => f.text);
    assert.deepEqual(fields, [
      "*Sensor*\nco2-001 (co2)",
      "*Value*\n1201 ppm",
      "*Threshold*\n1000 ppm",
      "*Location*\nBuilding A, Floor 1",
      "*Time*\n2026-11-25T21:00:00.000Z",
      "*Rule*\nco2-critical",
    ]);
  } finally {
    await receiver.down();
  }
});

Deno.test("message() shows a resolved notice in green and counts what a group leaves out", () => {
  const resolved = message([{
    id: "n",
    alert: alert({ state: "resolved", message: "Resolved: back below 1000" }),
  }]);
  assert.equal(resolved.attachments[0]!.color, "#2eb67d");
  assert.match(resolved.text, /^Resolved: /);
  const many = message(Array.from({ length: 5 }, (_, i) => ({ id: `${i}`, alert: alert() })), 3);
  assert.equal(many.attachments.length, 4);
  assert.match(JSON.stringify(many.attachments[3]), /and 2 more/);
});

Deno.test("the Slack URL and the webhook secret appear in no log line, error or DLQ record", async () => {
  const slackToken = `T${crypto.randomUUID().replaceAll("-", "")}`;
  const key = crypto.getRandomValues(new Uint8Array(24));
  const secret = `whsec_${btoa(String.fromCharCode(...key))}`;
  // A port nobody listens on: the transport error of fetch names the URL.
  const closed = await Receiver.start(200);
  const deadUrl = closed.url;
  await closed.down();
  const failing = await Receiver.start(500);
  const { logger, lines } = captureLogger();
  try {
    const slackUrl = `${deadUrl}/services/${slackToken}`;
    const s = await instance(slack, "slack", {
      url: slackUrl,
      timeout_ms: 500,
      allow_private_targets: true,
    }, logger);
    const w = await instance(webhook, "hook", {
      url: `${failing.url}/h`,
      secret,
      timeout_ms: 500,
      allow_private_targets: true,
    }, logger);
    const dlq: OutRecord[] = [];
    const d = dispatcher([s, w], { logger, deadLetter: (r) => Promise.resolve(void dlq.push(...r)) }, {
      policy: { maxAttempts: 2 },
    });
    await d.deliver([alert()]);
    assert.equal(dlq.length, 2, "both failed for good");
    const errors: string[] = [];
    for (const inst of [s, w]) {
      await notifyOnce(inst, [{ id: "x", alert: alert() }]).catch((e: Error) =>
        errors.push(`${e.message} ${String(e.cause ?? "")} ${e.stack}`)
      );
    }
    assert.equal(errors.length, 2);
    const everything = [...lines, ...errors, ...dlq.map((r) => r.value)].join("\n");
    assert.ok(lines.length > 0 && everything.includes("[REDACTED]"), "the failures were logged, redacted");
    assert.ok(!everything.includes(slackToken), "Slack URL leaked");
    assert.ok(!everything.includes(secret.slice(6)), "webhook secret leaked");
    assert.ok(!everything.includes(slackUrl), "Slack URL leaked");
  } finally {
    await failing.down();
  }
});

Deno.test("slack: a webhook URL on a private address is refused before any request, naming no secret", async () => {
  const receiver = await Receiver.start(200);
  const { logger } = captureLogger();
  try {
    const token = `T${crypto.randomUUID().replaceAll("-", "")}`;
    const url = `${receiver.url.replace("127.0.0.1", "localhost")}/services/${token}`;
    const inst = await instance(slack, "slack", { url }, logger);
    const err = await failureOf(notifyOnce(inst, [{ id: "n", alert: alert() }]));
    assert.ok(err instanceof DeliveryError);
    assert.equal(err.reason, "client");
    assert.equal(err.retryable, false);
    assert.match(err.message, /of host "localhost" is loopback/);
    assert.ok(!err.message.includes(token));
    assert.equal(receiver.received.length, 0);
  } finally {
    await receiver.down();
  }
});

/** Posts `batch` through the plugin to a real receiver and returns the JSON body Slack would get. */
async function posted(batch: SensorAlert[], options: Record<string, unknown> = {}) {
  const receiver = await Receiver.start(200);
  const { logger } = captureLogger();
  try {
    const inst = await instance(slack, "slack", {
      url: receiver.url,
      allow_private_targets: true,
      ...options,
    }, logger);
    await notifyOnce(inst, batch.map((a, i) => ({ id: `n${i}`, alert: a })), "n");
    assert.equal(receiver.received.length, 1);
    return JSON.parse(receiver.received[0]!.body) as SlackBody;
  } finally {
    await receiver.down();
  }
}

interface SlackText {
  type: string;
  text: string;
}
interface SlackBody {
  text: string;
  attachments: {
    blocks: { type: string; text?: SlackText; fields?: SlackText[]; elements?: SlackText[] }[];
  }[];
}

/** Every text of the message: the top-level one and each block's. */
function texts(body: SlackBody): string[] {
  return [
    body.text,
    ...body.attachments.flatMap((a) =>
      a.blocks.flatMap((b) =>
        [b.text, ...(b.fields ?? []), ...(b.elements ?? [])].flatMap((t) => t ? [t.text] : [])
      )
    ),
  ];
}

/** No raw `<` or `>`, and every `&` starts a whole entity. */
function assertEscaped(text: string) {
  assert.ok(!/[<>]/.test(text), `unescaped markup in ${JSON.stringify(text.slice(0, 200))}`);
  assert.ok(!/&(?!(amp|lt|gt);)/.test(text), `a broken entity in ${JSON.stringify(text.slice(-200))}`);
}

Deno.test("slack: mentions and links in event fields are escaped in the text and every block", async () => {
  const hostile = "<!channel> <https://evil.example|Click> & <@U123>";
  const body = await posted([alert({
    sensor_id: hostile,
    location: hostile,
    message: `CO2 at ${hostile}: value 1201 ppm`,
    rule_id: hostile,
    alert_id: hostile,
  })]);
  for (const text of texts(body)) assertEscaped(text);
  assert.equal(
    body.text,
    "CRITICAL: CO2 at &lt;!channel&gt; &lt;https://evil.example|Click&gt; &amp; &lt;@U123&gt;: value 1201 ppm",
  );
  const group = await posted([alert({ message: `first ${hostile}` }), alert()]);
  for (const text of texts(group)) assertEscaped(text);
  assert.match(group.text, /^2 alerts, first: first &lt;!channel&gt;/);
});

Deno.test("slack: a section text is cut to 3,000 characters after escaping, with a marker", async () => {
  const body = await posted([alert({ message: `CO2 at ${"&".repeat(3_500)}` })]);
  const text = body.attachments[0]!.blocks[0]!.text!.text;
  assert.equal(text.length <= 3_000, true, `${text.length} characters`);
  assert.ok(text.length > 2_900, "cut, not emptied");
  assert.ok(text.endsWith("… [truncated]"), text.slice(-40));
  assertEscaped(text);
});

Deno.test("slack: a field is cut to 2,000 characters after escaping, with a marker", async () => {
  const sensor = `s-${"<&>".repeat(1_200)}`;
  const body = await posted([alert({ sensor_id: sensor, location: "x".repeat(2_500) })]);
  const fields = body.attachments[0]!.blocks[1]!.fields!.map((f) => f.text);
  for (const f of fields) {
    assert.ok(f.length <= 2_000, `${f.length} characters`);
    assertEscaped(f);
  }
  assert.ok(fields[0]!.startsWith("*Sensor*\ns-&lt;&amp;&gt;"));
  assert.ok(fields[0]!.endsWith("… [truncated]"));
  assert.ok(fields[3]!.endsWith("… [truncated]"));
});

Deno.test("slack: a context text is cut to 3,000 characters", async () => {
  const body = await posted([alert({ alert_id: "a&".repeat(2_000) })]);
  const context = body.attachments[0]!.blocks[2]!.elements![0]!.text;
  assert.ok(context.length <= 3_000, `${context.length} characters`);
  assertEscaped(context);
});

Deno.test("slack: the top-level text is cut to 40,000 characters after escaping", async () => {
  const body = await posted([alert({ message: "&".repeat(45_000) })]);
  assert.ok(body.text.length <= 40_000, `${body.text.length} characters`);
  assert.ok(body.text.length > 39_000, "cut, not emptied");
  assert.ok(body.text.endsWith("… [truncated]"));
  assertEscaped(body.text);
});

Deno.test("slack: a group of 40 with max_alerts 40 stays within 50 blocks and counts the rest", async () => {
  const body = await posted(Array.from({ length: 40 }, () => alert()), { max_alerts: 40 });
  const blocks = body.attachments.reduce((n, a) => n + a.blocks.length, 0);
  assert.ok(blocks <= 50, `${blocks} blocks`);
  const shown = body.attachments.length - 1;
  assert.equal(shown, 16, "as many whole alerts as fit");
  const last = JSON.stringify(body.attachments.at(-1));
  assert.match(last, new RegExp(`… and ${40 - shown} more alerts`));
});

Deno.test("clip() cuts at the limit without splitting an entity or a surrogate pair", () => {
  for (let limit = 20; limit < 40; limit++) {
    for (const unit of ["&amp;", "&lt;", "&gt;", "😀", "a"]) {
      const text = unit.repeat(40);
      const cut = clip(text, limit);
      assert.ok(cut.length <= limit, `${cut.length} > ${limit}`);
      assert.ok(cut.endsWith("… [truncated]"));
      const kept = cut.slice(0, -"… [truncated]".length);
      assert.ok(text.startsWith(kept));
      assert.equal(kept.length % unit.length, 0, `${unit} split at ${limit}: ${kept}`);
      assert.ok(limit - cut.length < unit.length, "no more than one unit is dropped");
    }
  }
  assert.equal(clip("short", 10), "short");
});
