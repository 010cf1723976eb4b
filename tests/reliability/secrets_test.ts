/**
 * Secrets from the environment reach no log line, error, API answer, metric or DLQ record, even when
 * every notifier fails: the service runs as an operator runs it (embedded mode), with real receivers.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { createLogger, registerSecret } from "../../src/log.ts";
import { notifyDlqRecord } from "../../src/notifiers/dead_letter.ts";
import { classifyError } from "../../src/notifiers/policy.ts";
import { waitFor } from "../helpers/kafka.ts";
import { alert } from "../helpers/notifiers.ts";
import { checkProperty } from "../helpers/property.ts";
import { httpUrl, startService } from "../helpers/service.ts";

const RULES = `rules:
  - id: temperature-out-of-range
    sensor_type: temperature
    threshold: { min: 10, max: 35 }
    priority: high
`;

const NOTIFIERS = `notifiers:
  - name: slack
    plugin: slack
    options: { url: "\${SLACK_WEBHOOK_URL}", allow_private_targets: true, timeout_ms: 1000 }
  - name: hook
    plugin: webhook
    options:
      url: "\${NOTIFY_WEBHOOK_URL}"
      secret: "\${NOTIFY_WEBHOOK_SECRET}"
      headers: { authorization: "Bearer \${API_TOKEN}" }
      allow_private_targets: true
  - name: guarded
    plugin: webhook
    options: { url: "\${NOTIFY_WEBHOOK_URL}" }
default_receivers: [slack, hook, guarded]
delivery: { max_attempts: 2, backoff_base: 50ms, backoff_max: 100ms, give_up_after: 10s, timeout: 2s }
`;

const random = (prefix: string) => `${prefix}${crypto.randomUUID().replaceAll("-", "")}`;

/** A receiver that fails and, like many real ones, echoes what it was sent in its error answer. */
function echoingReceiver(status: number) {
  const seen: { path: string; headers: Headers }[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const url = new URL(req.url);
    seen.push({ path: url.pathname, headers: req.headers });
    await req.body?.cancel();
    const auth = req.headers.get("authorization") ?? "";
    return new Response(`No route for ${url.pathname} (${auth})`, { status });
  });
  return { url: `http://127.0.0.1:${server.addr.port}`, seen, close: () => server.shutdown() };
}

Deno.test("no secret from the environment reaches stdout, stderr, the API, /metrics or the DLQ file", async () => {
  const secrets = {
    KAFKA_SASL_PASSWORD: random("sasl-"),
    API_TOKEN: random("tok-"),
    slackPath: random("T0/B0/"),
    hookPath: random("hook-"),
    NOTIFY_WEBHOOK_SECRET: `whsec_${
      btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(24))))
    }`,
  };
  const slack = echoingReceiver(500);
  const hook = echoingReceiver(404);
  await Deno.mkdir("tests/artifacts", { recursive: true });
  const dir = await Deno.makeTempDir({ dir: "tests/artifacts", prefix: "secrets-" });
  await Deno.writeTextFile(`${dir}/rules.yaml`, RULES);
  await Deno.writeTextFile(`${dir}/notifiers.yaml`, NOTIFIERS);
  const dlqFile = `${dir}/dlq.ndjson`;
  const service = startService({
    KAFKA_BROKERS: "",
    KAFKA_SASL_MECHANISM: "plain",
    KAFKA_SASL_USERNAME: "svc",
    KAFKA_SASL_PASSWORD: secrets.KAFKA_SASL_PASSWORD,
    API_TOKEN: secrets.API_TOKEN,
    SLACK_WEBHOOK_URL: `${slack.url}/services/${secrets.slackPath}`,
    NOTIFY_WEBHOOK_URL: `${hook.url}/${secrets.hookPath}`,
    NOTIFY_WEBHOOK_SECRET: secrets.NOTIFY_WEBHOOK_SECRET,
    RULES_DIR: dir,
    DLQ_FILE: dlqFile,
    LOG_LEVEL: "debug",
  }, ["--rate", "20", "--anomaly", "1", "--seed", "3"]);
  const answers: string[] = [];
  let dlq = "";
  try {
    const base = await httpUrl(service);
    // Every notifier has failed for good at least once: slack after its retries, hook at once (404),
    // guarded at once (its target is refused).
    dlq = await waitFor("a DLQ record from each notifier", async () => {
      const text = await Deno.readTextFile(dlqFile).catch(() => "");
      return ["slack", "hook", "guarded"].every((n) => text.includes(`"notifier":"${n}"`)) && text;
    }, 30_000);
    const auth = { authorization: `Bearer ${secrets.API_TOKEN}` };
    for (const path of ["/api/alerts", "/api/sensors", "/api/rules", "/metrics", "/healthz", "/readyz"]) {
      const res = await fetch(`${base}${path}`, { headers: auth });
      answers.push(`${path} ${res.status} ${[...res.headers].join(" ")}\n${await res.text()}`);
    }
    const stream = await fetch(`${base}/api/stream`, { headers: auth });
    const reader = stream.body!.pipeThrough(new TextDecoderStream()).getReader();
    for (let i = 0; i < 5; i++) answers.push((await reader.read()).value ?? "");
    await reader.cancel();
    // The secrets were in use: the receivers got them.
    assert.ok(slack.seen.some((r) => r.path.endsWith(secrets.slackPath)));
    assert.ok(hook.seen.some((r) => r.headers.get("authorization") === `Bearer ${secrets.API_TOKEN}`));
    assert.ok(hook.seen.some((r) => r.headers.get("webhook-signature")?.startsWith("v1,")));
    assert.match(dlq, /Receiver address \\"127\.0\.0\.1\\" is loopback/, "the guard's refusal is in the DLQ");
    assert.match(dlq, /\[REDACTED\]/, "the echoed secrets were redacted");
  } finally {
    const status = await service.stop();
    await slack.close();
    await hook.close();
    assert.equal(status.code, 0, service.stderr().slice(-2000));
  }
  dlq = await Deno.readTextFile(dlqFile);
  const places = {
    stdout: service.stdout(),
    stderr: service.stderr(),
    api: answers.join("\n"),
    dlq,
  };
  assert.ok(places.stderr.includes('"level":"warn"'), "failures were logged");
  for (const [where, text] of Object.entries(places)) {
    for (const [name, value] of Object.entries(secrets)) {
      // The whsec_ prefix is public; the key after it is the secret.
      const needle = value.replace(/^whsec_/, "");
      assert.ok(
        !text.includes(needle),
        `${name} leaked into ${where}:\n${text.split("\n").filter((l) => l.includes(needle)).join("\n")}`,
      );
    }
  }
  await Deno.remove(dir, { recursive: true });
});

/** A logger whose lines are kept, JSON or pretty. */
function keptLogger(pretty: boolean) {
  const lines: string[] = [];
  return { logger: createLogger({ level: "debug", sink: { write: (l) => lines.push(l), pretty } }), lines };
}

/** `text` as it reads after `depth` rounds of JSON string escaping (a JSON body echoed inside a JSON log line). */
function escaped(text: string, depth: number): string {
  let out = text;
  for (let i = 0; i < depth; i++) out = JSON.stringify(out).slice(1, -1);
  return out;
}

const SPECIAL: [string, string][] = [
  ["a double quote", '"'],
  ["a backslash", "\\"],
  ["a newline", "\n"],
  ["a tab", "\t"],
  ["a control character", "\u0001"],
  ["a lone surrogate", "\ud800"],
];

for (const [what, char] of SPECIAL) {
  for (const pretty of [false, true]) {
    Deno.test(`a secret containing ${what} is redacted in ${pretty ? "pretty" : "JSON"} log lines`, () => {
      const secret = random("tok-").slice(0, 12) + char + random("x");
      registerSecret(secret);
      const { logger, lines } = keptLogger(pretty);
      logger.warn(`Receiver said ${secret}`, {
        detail: `echo: ${secret}`,
        nested: { body: JSON.stringify({ error: secret }) },
        err: new Error(`bad token ${secret}`),
      });
      assert.equal(lines.length, 1);
      const line = lines[0]!;
      assert.ok(line.includes("[REDACTED]"), line);
      for (let depth = 0; depth <= 2; depth++) {
        assert.ok(!line.includes(escaped(secret, depth)), `escaped ${depth}× leaked: ${line}`);
      }
      if (!pretty) JSON.parse(line);
    });
  }
}

Deno.test("no generated secret appears in a log line, a delivery error or a DLQ record", () => {
  // No digits, capitals or brackets: a secret can then neither be part of the time stamp nor overlap
  // the "[REDACTED]" that replaces it, so any occurrence in the output is a leak.
  const unit = fc.constantFrom(
    ..."abcdefgh xyz-_./:@=&%+,;{}'<>é€😀".split(/(?:)/u),
    '"',
    "\\",
    "\n",
    "\r",
    "\t",
    "\u0000",
    "\u001b",
    "\u007f",
    "\u2028",
    "\ud800",
    "\udfff",
  );
  checkProperty(
    fc.property(
      fc.string({ unit, minLength: 6, maxLength: 24 }),
      fc.string({ maxLength: 12 }),
      fc.boolean(),
      (secret, around, pretty) => {
        const forms = [0, 1, 2].map((d) => escaped(secret, d));
        const { logger, lines } = keptLogger(pretty);
        const emit = (s: string) => {
          logger.error(`${around}${s}${around}`, {
            field: `${around}${s}`,
            body: JSON.stringify({ echo: s, again: JSON.stringify({ echo: s }) }),
            err: new Error(`failed with ${s}`),
          });
        };
        // A secret that is part of the log line's own frame cannot be told apart from it.
        emit("PLACEHOLDER");
        fc.pre(!forms.some((f) => lines[0]!.includes(f)));
        registerSecret(secret);
        emit(secret);
        const error = classifyError(new Error(`refused ${JSON.stringify({ token: secret })}`), false);
        const dlq = notifyDlqRecord({
          alert: alert({ message: "m" }),
          notifier: "n",
          plugin: "p",
          notificationId: "id",
          deliveryId: "id",
          attempts: [{ attempt: 1, at: "t", reason: "client", error: `answer ${JSON.stringify(secret)}` }],
          error: `echo ${secret}`,
        }, { alerts: "alerts", dlq: "dlq" }).value ?? "";
        for (const text of [lines[1]!, error.message, dlq]) {
          for (const f of forms) assert.ok(!text.includes(f), `${JSON.stringify(f)} in ${text}`);
        }
      },
    ),
    300,
  );
});
