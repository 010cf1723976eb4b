import assert from "node:assert/strict";
import { DeliveryError } from "../../src/notifiers/plugin.ts";
import { postJson, readStart } from "../../src/notifiers/policy.ts";

const MiB = 1024 * 1024;

/**
 * A receiver on 127.0.0.1 that answers 500 with a body that never ends, counting the bytes the
 * server pulled to send. The stream stops by itself at `limit` bytes so the test always ends.
 */
function endlessErrorReceiver(limit: number) {
  let pulled = 0;
  const cancelled = Promise.withResolvers<void>();
  const chunk = new TextEncoder().encode("overloaded: ".padEnd(64 * 1024, "x"));
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    await req.text();
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (pulled >= limit) {
          controller.close();
          cancelled.resolve();
          return;
        }
        pulled += chunk.byteLength;
        controller.enqueue(chunk);
      },
      cancel() {
        cancelled.resolve();
      },
    });
    return new Response(body, { status: 500, headers: { "content-type": "text/plain" } });
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}/hook`,
    pulled: () => pulled,
    cancelled: cancelled.promise,
    close: () => server.shutdown(),
  };
}

Deno.test("postJson() reads only the start of an error answer whose body never ends", async () => {
  const limit = 2048 * MiB;
  const receiver = endlessErrorReceiver(limit);
  try {
    const err = await postJson(receiver.url, "{}", { timeoutMs: 3_000 }).then(
      () => assert.fail("a 500 must fail the delivery"),
      (e: unknown) => e,
    );
    assert.ok(err instanceof DeliveryError, String(err));
    assert.equal(err.reason, "server");
    assert.equal(err.status, 500);
    assert.equal(err.retryable, true);
    // The receiver's stream ends once we hang up: by cancel when the connection closes, or at the
    // test's own limit if we kept reading.
    await receiver.cancelled;
    // A bound, not a time: what fits in the TCP buffers of both ends and the server's queue. Before
    // the fix postJson read until its timeout.
    assert.ok(receiver.pulled() < 16 * MiB, `the receiver sent ${(receiver.pulled() / MiB).toFixed(1)} MiB`);
    // The operator still sees what the receiver said.
    assert.match(err.message, /Receiver answered 500: "overloaded: x+/);
  } finally {
    await receiver.close();
  }
});

Deno.test("readStart() stops at the byte limit, cancels the rest and drops a character cut in two", async () => {
  let cancelled = false;
  let pulls = 0;
  const piece = new TextEncoder().encode("a" + "é".repeat(100)); // 201 bytes
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      // Bounded by itself: a reader that ignored the limit would see the stream end at 1,000 pulls.
      if (++pulls > 1000) return controller.close();
      controller.enqueue(piece);
    },
    cancel() {
      cancelled = true;
    },
  });
  // 203 bytes: the first piece (201) and "a" with half an "é" of the second; the half is dropped,
  // not shown as U+FFFD.
  const text = await readStart(body, 203);
  assert.equal(text, "a" + "é".repeat(100) + "a");
  assert.ok(cancelled, "the rest of the body is cancelled");
  assert.ok(pulls <= 3, `${pulls} pulls`);
  const cut = await readStart(new Response(piece).body, 2);
  assert.equal(cut, "a");
  assert.equal(await readStart(null, 10), "");
});

Deno.test("postJson() redacts a secret the receiver echoes where the error text is cut: no part of it is kept", async () => {
  const secret = "tok_15c221d9c7f04b0e8b2d3a61f0e9a4c7";
  // A 401 echoing the credentials after 160 characters: the kept 200 cut the secret in two.
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (req) => {
      await req.text();
      return new Response(`${"x".repeat(160)} invalid credentials: ${req.headers.get("authorization")}`, {
        status: 401,
      });
    },
  );
  try {
    const err = await postJson(`http://127.0.0.1:${server.addr.port}/hook`, "{}", {
      timeoutMs: 3_000,
      headers: { authorization: `Bearer ${secret}` },
      secrets: [secret],
    }).then(() => assert.fail("a 401 must fail the delivery"), (e: unknown) => e as Error);
    assert.match(err.message, /Receiver answered 401/);
    assert.doesNotMatch(err.message, /tok_/, err.message);
  } finally {
    await server.shutdown();
  }
});
