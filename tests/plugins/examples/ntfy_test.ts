/** The example plugin, referenced from YAML by path: it receives alerts with no change elsewhere. */
import assert from "node:assert/strict";
import { Dispatcher } from "../../../src/notifiers/dispatcher.ts";
import { NotifierRegistry } from "../../../src/notifiers/registry.ts";
import { DeliveryError } from "../../../src/notifiers/plugin.ts";
import { alert, captureLogger } from "../../helpers/notifiers.ts";
import { Receiver } from "../../helpers/receiver.ts";

Deno.test("a custom plugin referenced from notifiers.yaml receives the alerts routed to it", async () => {
  const receiver = await Receiver.start(200);
  await Deno.mkdir("tests/artifacts", { recursive: true });
  const dir = await Deno.makeTempDir({ dir: "tests/artifacts", prefix: "ntfy-" });
  const file = `${dir}/notifiers.yaml`;
  await Deno.writeTextFile(
    file,
    `notifiers:
  - name: phone
    plugin: plugins/examples/ntfy.ts
    options: { server: "${receiver.url}", topic: sensors, allow_private_targets: true }
routes:
  - match: { priority: critical }
    receivers: [phone]
`,
  );
  const { logger } = captureLogger();
  const registry = new NotifierRegistry({ file, pluginsDir: "plugins", logger });
  try {
    await registry.load();
    const d = new Dispatcher({
      notifiers: () => registry.set,
      logger,
      deadLetter: () => Promise.reject(new Error("nothing should be dead-lettered")),
      dlqTopic: "dlq",
      alertsTopic: "alerts",
    });
    const a = alert();
    await d.deliver([a, alert({ priority: "low" })].map((x) => x));
    assert.equal(receiver.received.length, 1, "only the critical alert is routed to the phone");
    const r = receiver.received[0]!;
    assert.equal(r.path, "/sensors");
    assert.equal(r.body, a.message);
    assert.equal(r.headers.get("x-priority"), "5");
    assert.equal(r.headers.get("x-sequence-id"), `${a.alert_id}.firing`);
    assert.equal(d.stats().phone!.delivered, 1);
  } finally {
    await registry.close();
    await receiver.down();
  }
});

Deno.test("the ntfy example fails for good on a 4xx and retries a 5xx, by the shared policy", async () => {
  const mod = await import("../../../plugins/examples/ntfy.ts");
  for (const [status, retryable] of [[404, false], [502, true]] as const) {
    const receiver = await Receiver.start(status);
    try {
      const n = await mod.default.create(
        mod.options.parse({ server: receiver.url, topic: "t", allow_private_targets: true }),
        {} as never,
      );
      const err = await n.notify([{ id: "x", alert: alert() }], {
        id: "x",
        signal: new AbortController().signal,
        attempt: 1,
      }).then(() => null, (e) => e);
      assert.equal(err?.retryable, retryable, `status ${status}`);
    } finally {
      await receiver.down();
    }
  }
});

Deno.test("the ntfy example refuses a server on a private address before any request, by the shared guard", async () => {
  const mod = await import("../../../plugins/examples/ntfy.ts");
  const receiver = await Receiver.start(200);
  try {
    for (const server of [receiver.url, receiver.url.replace("127.0.0.1", "localhost")]) {
      const n = await mod.default.create(mod.options.parse({ server, topic: "t" }), {} as never);
      const err = await n.notify([{ id: "x", alert: alert() }], {
        id: "x",
        signal: new AbortController().signal,
        attempt: 1,
      }).then(() => null, (e) => e);
      assert.ok(err instanceof DeliveryError, `${server} was allowed`);
      assert.equal(err.retryable, false);
      assert.match(
        err.message,
        /is loopback: refused unless the notifier sets "allow_private_targets: true"/,
      );
    }
    assert.equal(receiver.received.length, 0);
  } finally {
    await receiver.down();
  }
});
