import assert from "node:assert/strict";
import RequestQueue from "kafkajs/src/network/requestQueue/index.js";
// The module that builds every Kafka client: importing it must be enough to mend the queue.
import "../../src/transport/kafka.ts";

const quiet = { debug() {}, info() {}, warn() {}, error() {} };

function queue(maxInFlightRequests: number | null = null) {
  return new RequestQueue({
    maxInFlightRequests,
    requestTimeout: 30_000,
    enforceRequestTimeout: false,
    clientId: "tests",
    broker: "127.0.0.1:9",
    logger: quiet,
  });
}

/** A request as a connection pushes it; `sent` resolves once the queue sends it. */
function request(correlationId: number) {
  const { promise: sent, resolve } = Promise.withResolvers<void>();
  const entry = {
    correlationId,
    apiKey: 0,
    apiName: "Produce",
    apiVersion: 0,
    resolve: () => {},
    reject: () => {},
  };
  return { pushed: { entry, expectResponse: false, sendRequest: () => resolve() }, sent };
}

Deno.test("kafkajs's request queue schedules no check while nothing waits", () => {
  const q = queue();
  try {
    // What a connection does after every response: with nothing pending, kafkajs 2.2.4 armed a
    // timer of a negative delay that re-armed itself, ~1,000 wake-ups a second per connection.
    q.checkPendingRequests();
    assert.equal(q.throttleCheckTimeoutId, null);
    q.maybeThrottle(50);
    q.checkPendingRequests();
    assert.equal(q.throttleCheckTimeoutId, null, "a throttle alone, with nothing to send, needs no check");
  } finally {
    q.destroy();
  }
});

Deno.test("kafkajs's request queue sends a request held by a throttle once the throttle ends", async () => {
  const q = queue();
  try {
    q.maybeThrottle(30);
    const r = request(1);
    q.push(r.pushed);
    assert.equal(q.pending.length, 1, "held while throttled");
    assert.notEqual(q.throttleCheckTimeoutId, null, "a check is scheduled for when the throttle ends");
    await r.sent;
    assert.equal(q.pending.length, 0);
    assert.equal(q.throttleCheckTimeoutId, null, "nothing is scheduled once the queue is empty");
  } finally {
    q.destroy();
  }
});

Deno.test("kafkajs's request queue sends a request held by the in-flight limit when a slot frees", async () => {
  const q = queue(1);
  try {
    const first = request(1);
    first.pushed.expectResponse = true;
    q.push(first.pushed);
    await first.sent;
    const second = request(2);
    q.push(second.pushed);
    assert.equal(q.pending.length, 1, "held: one request in flight already");
    // The first one's response frees the slot (what a connection does when a response arrives).
    q.fulfillRequest({ correlationId: 1, size: 0, payload: null });
    await second.sent;
    assert.equal(q.pending.length, 0);
  } finally {
    q.destroy();
  }
});
