import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { DeliveryError } from "../../src/notifiers/plugin.ts";
import { NotifierRegistry } from "../../src/notifiers/registry.ts";
import webhook, { payload, sign } from "../../plugins/webhook.ts";
import { alert, captureLogger, dispatcher, failureOf, instance, notifyOnce } from "../helpers/notifiers.ts";
import { type Answer, Receiver } from "../helpers/receiver.ts";
import type { OutRecord } from "../../src/transport/output.ts";

const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

Deno.test("sign() matches the Standard Webhooks test vector", async () => {
  // The example of the Standard Webhooks specification (standard-webhooks/spec).
  const sig = await sign(SECRET, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, '{"test": 2432232314}');
  assert.equal(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
});

Deno.test("sign() agrees with an independent HMAC over id.timestamp.body", async () => {
  const key = crypto.getRandomValues(new Uint8Array(24));
  const secret = `whsec_${btoa(String.fromCharCode(...key))}`;
  const expected = createHmac("sha256", key).update('id-1.1700000000.{"a":1}').digest("base64");
  assert.equal(await sign(secret, "id-1", 1700000000, '{"a":1}'), `v1,${expected}`);
});

/** What the receiver answers → what the plugin reports: the delivery policy, seen from outside. */
const TABLE: [string, Answer, null | Partial<DeliveryError>][] = [
  ["200", 200, null],
  ["204", 204, null],
  ["400", 400, { reason: "client", retryable: false, status: 400 }],
  ["410", 410, { reason: "client", retryable: false, status: 410 }],
  ["429 with Retry-After", { status: 429, headers: { "retry-after": "7" } }, {
    reason: "rate-limited",
    retryable: true,
    status: 429,
    retryAfterMs: 7000,
  }],
  ["500", 500, { reason: "server", retryable: true, status: 500 }],
  ["503", 503, { reason: "server", retryable: true, status: 503 }],
  ["a redirect", { status: 302, headers: { location: "http://127.0.0.1:1/elsewhere" } }, {
    reason: "client",
    retryable: false,
    status: 302,
  }],
  ["a hang past the timeout", "hang", { reason: "timeout", retryable: true }],
];

for (const [what, answer, expected] of TABLE) {
  Deno.test(`webhook: a receiver answering ${what} → ${expected === null ? "delivered" : `${expected.reason}, retryable ${expected.retryable}`}`, async () => {
    const receiver = await Receiver.start(answer);
    const { logger } = captureLogger();
    try {
      const inst = await instance(webhook, "hook", {
        url: `${receiver.url}/hook`,
        timeout_ms: 300,
        allow_private_targets: true,
      }, logger);
      const a = alert();
      const run = notifyOnce(inst, [{ id: "n-1", alert: a }]);
      if (expected === null) {
        await run;
      } else {
        const err = await run.then(() => null, (e) => e);
        assert.ok(err instanceof DeliveryError, `expected a DeliveryError, got ${err}`);
        for (const [k, v] of Object.entries(expected)) assert.equal(err[k as keyof DeliveryError], v, k);
      }
      assert.equal(receiver.received.length, 1, "one request, redirects not followed");
    } finally {
      await receiver.down();
    }
  });
}

Deno.test("webhook: a received request verifies with the secret and carries alert, event and rule", async () => {
  const receiver = await Receiver.start(200);
  const { logger } = captureLogger();
  try {
    const inst = await instance(webhook, "hook", {
      url: receiver.url,
      secret: SECRET,
      headers: { "x-team": "safety" },
      allow_private_targets: true,
    }, logger);
    const a = alert();
    await notifyOnce(inst, [{ id: "a1.firing", alert: a }]);
    const r = receiver.received[0]!;
    const id = r.headers.get("webhook-id")!;
    const ts = r.headers.get("webhook-timestamp")!;
    assert.equal(id, "a1.firing");
    assert.ok(Math.abs(Number(ts) - Date.now() / 1000) < 60);
    const key = Uint8Array.from(atob(SECRET.slice(6)), (c) => c.charCodeAt(0));
    const expected = createHmac("sha256", key).update(`${id}.${ts}.${r.body}`).digest("base64");
    assert.equal(r.headers.get("webhook-signature"), `v1,${expected}`);
    assert.equal(r.headers.get("x-team"), "safety");
    assert.equal(r.headers.get("content-type"), "application/json");
    const body = JSON.parse(r.body);
    assert.equal(body.type, "alert");
    assert.equal(body.alert.alert_id, a.alert_id);
    assert.equal(body.alert.event, undefined, "the event is its own field");
    assert.deepEqual(body.event, a["event"]);
    assert.deepEqual(body.rule, {
      id: "co2-critical",
      description: "CO2 concentration above 1000 ppm",
      priority: "critical",
      threshold: 1000,
      labels: { team: "safety" },
    });
  } finally {
    await receiver.down();
  }
});

Deno.test("webhook: every retry of one notification carries the same webhook-id, re-signed", async () => {
  const receiver = await Receiver.start((_r, i) => i < 2 ? 500 : 200);
  const { logger } = captureLogger();
  try {
    const inst = await instance(webhook, "hook", {
      url: receiver.url,
      secret: SECRET,
      allow_private_targets: true,
    }, logger);
    const dlq: OutRecord[] = [];
    const d = dispatcher([inst], { logger, deadLetter: (r) => Promise.resolve(void dlq.push(...r)) });
    const a = alert();
    await d.deliver([a]);
    assert.equal(receiver.received.length, 3);
    const ids = new Set(receiver.received.map((r) => r.headers.get("webhook-id")));
    assert.deepEqual([...ids], [`${a.alert_id}.firing`]);
    assert.deepEqual(d.stats().hook, {
      ...d.stats().hook!,
      delivered: 1,
      failed: 2,
      retried: 2,
      dead_lettered: 0,
    });
    assert.equal(dlq.length, 0);
  } finally {
    await receiver.down();
  }
});

Deno.test("payload() of a group lists every notification", () => {
  const body = JSON.parse(payload("g1", [{ id: "1", alert: alert() }, { id: "2", alert: alert() }]));
  assert.equal(body.type, "alert.group");
  assert.equal(body.notifications.length, 2);
});

Deno.test("webhook options reject a secret that is not whsec_<base64>", () => {
  const r = webhook.options.safeParse({ url: "http://127.0.0.1/", secret: "plain" });
  assert.equal(r.success, false);
});

Deno.test("webhook: a receiver on 127.0.0.1 without allow_private_targets is refused, dead-lettered at once, never contacted", async () => {
  const receiver = await Receiver.start(200);
  const { logger } = captureLogger();
  try {
    const inst = await instance(webhook, "hook", { url: `${receiver.url}/hook` }, logger);
    const dlq: OutRecord[] = [];
    const d = dispatcher([inst], { logger, deadLetter: (r) => Promise.resolve(void dlq.push(...r)) });
    await d.deliver([alert()]);
    assert.equal(receiver.received.length, 0, "the receiver saw no request");
    assert.equal(dlq.length, 1);
    const record = JSON.parse(String(dlq[0]!.value));
    assert.equal(record.stage, "notify");
    assert.equal(record.attempts.length, 1, "not retried");
    assert.match(
      record.error,
      /Receiver address "127\.0\.0\.1" is loopback: refused unless the notifier sets "allow_private_targets: true"/,
    );
    assert.equal(d.stats().hook!.retried, 0);
  } finally {
    await receiver.down();
  }
});

Deno.test("webhook: a host name resolving to loopback (localhost) is refused without a request", async () => {
  const receiver = await Receiver.start(200);
  const { logger } = captureLogger();
  try {
    const url = receiver.url.replace("127.0.0.1", "localhost");
    const inst = await instance(webhook, "hook", { url }, logger);
    const err = await failureOf(notifyOnce(inst, [{ id: "n", alert: alert() }]));
    assert.ok(err instanceof DeliveryError);
    assert.equal(err.retryable, false);
    assert.match(err.message, /of host "localhost" is loopback/);
    assert.equal(receiver.received.length, 0);
    // Naming the host is the narrow way to allow it.
    const allowed = await instance(webhook, "hook", { url, allowed_hosts: ["localhost"] }, logger);
    await notifyOnce(allowed, [{ id: "n", alert: alert() }]);
    assert.equal(receiver.received.length, 1);
  } finally {
    await receiver.down();
  }
});

Deno.test("webhook: a redirect to another path of a reachable receiver is not followed", async () => {
  const receiver = await Receiver.start((r) =>
    r.path === "/hook" ? { status: 307, headers: { location: "/elsewhere" } } : 200
  );
  const { logger } = captureLogger();
  try {
    const inst = await instance(webhook, "hook", {
      url: `${receiver.url}/hook`,
      allow_private_targets: true,
    }, logger);
    const err = await failureOf(notifyOnce(inst, [{ id: "n", alert: alert() }]));
    assert.ok(err instanceof DeliveryError);
    assert.equal(err.status, 307);
    assert.deepEqual(receiver.received.map((r) => r.path), ["/hook"]);
  } finally {
    await receiver.down();
  }
});

Deno.test("webhook: a credential written as it is in `headers` is hidden when the receiver echoes it", async () => {
  const token = "tok_literal_7f3c9a1e5b2d4c6e8f0a";
  const seen: Headers[] = [];
  // A receiver that echoes the credentials it was sent in its refusal.
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    await req.text();
    seen.push(req.headers);
    const echoed = `${req.headers.get("authorization")} ${req.headers.get("x-api-key")}`;
    return new Response(`denied for ${echoed}`, { status: 403 });
  });
  const { logger } = captureLogger();
  try {
    const inst = await instance(webhook, "hook", {
      url: `http://127.0.0.1:${server.addr.port}/hook`,
      headers: { authorization: `Bearer ${token}`, "x-api-key": "key_9d8c7b6a5f4e", "x-tenant": "plant-7" },
      timeout_ms: 2_000,
      allow_private_targets: true,
    }, logger);
    const err = await notifyOnce(inst, [{ id: "n-1", alert: alert() }]).then(() => null, (e) => e as Error);
    assert.ok(err instanceof DeliveryError, String(err));
    assert.equal(err.status, 403);
    assert.doesNotMatch(err.message, /tok_literal|key_9d8c/, err.message);
    assert.equal(seen[0]!.get("x-tenant"), "plant-7", "the headers are sent as written");
  } finally {
    await server.shutdown();
  }
});

/**
 * Header names and values `fetch` refuses (or hyper, when sending): before, such a notifiers.yaml
 * loaded without a word, and every notification then failed as a "plugin" error, retryable, so each
 * was retried for `give_up_after` (2 min) before reaching the DLQ, and nothing was ever delivered.
 */
const BAD_HEADERS: [string, string, string, RegExp][] = [
  ["an en dash (past U+00FF)", "X-Team", '"Équipe – nord"', /option "headers\.X-Team": .*U\+2013 at index 7/],
  ["a line break inside", "X-Team", '"a\\nX-Injected: 1"', /option "headers\.X-Team": .*U\+000A at index 1/],
  ["a control character", "X-Team", '"a\\u0001b"', /option "headers\.X-Team": .*U\+0001 at index 1/],
  ["DEL", "X-Team", '"a\\u007fb"', /option "headers\.X-Team": .*U\+007F at index 1/],
  ["a space in the name", "X Team", "safety", /option "headers": header name "X Team" is not an HTTP token/],
];

for (const [what, name, value, message] of BAD_HEADERS) {
  Deno.test(`webhook: notifiers.yaml with a header of ${what} is refused at load, naming line and header`, async () => {
    await Deno.mkdir("tests/artifacts", { recursive: true });
    const dir = await Deno.makeTempDir({ dir: "tests/artifacts", prefix: "webhook-headers-" });
    const file = `${dir}/notifiers.yaml`;
    try {
      await Deno.writeTextFile(
        file,
        "notifiers:\n  - name: hook\n    plugin: webhook\n    options:\n      url: https://hooks.example.com/x\n" +
          `      headers:\n        ${name}: ${value}\n`,
      );
      const r = new NotifierRegistry({ file, pluginsDir: "plugins", logger: captureLogger().logger });
      await assert.rejects(r.load(), (e: Error) => {
        assert.match(e.message, /notifiers\.yaml:\d+:\d+ Notifier "hook" \(plugin "webhook"\): /);
        assert.match(e.message, message);
        return true;
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("webhook: header values fetch accepts load and are sent: Latin-1, a tab, a trailing newline (trimmed)", async () => {
  const receiver = await Receiver.start(200);
  const { logger } = captureLogger();
  try {
    const inst = await instance(webhook, "hook", {
      url: receiver.url,
      // A token read from a file often ends in a newline: fetch strips it, as the HTTP spec says.
      headers: { "x-team": "équipe\tnord", authorization: "Bearer tok_5e4d3c2b1a\n" },
      allow_private_targets: true,
    }, logger);
    await notifyOnce(inst, [{ id: "a1.firing", alert: alert() }]);
    const r = receiver.received[0]!;
    assert.equal(r.headers.get("x-team"), "équipe\tnord");
    assert.equal(r.headers.get("authorization"), "Bearer tok_5e4d3c2b1a");
  } finally {
    await receiver.down();
  }
});
