import assert from "node:assert/strict";
import { notifierStats } from "../../src/http/notifier_stats.ts";

Deno.test("notifierStats() reads per-notifier stats with their breaker state", () => {
  const dispatcher = {
    counters: { delivered: 3, failed: 1 },
    stats: () => ({
      console: {
        plugin: "console",
        delivered: 3,
        failed: 0,
        retried: 0,
        dead_lettered: 0,
        in_flight: 0,
        breaker: { state: "closed" },
      },
      hook: {
        plugin: "webhook",
        delivered: 0,
        failed: 4,
        retried: 3,
        dead_lettered: 1,
        in_flight: 2,
        breaker: { state: "open", retry_at: "x" },
      },
    }),
  };
  assert.deepEqual(notifierStats(dispatcher), [
    {
      notifier: "console",
      outcomes: { delivered: 3, failed: 0, retried: 0, dead_lettered: 0 },
      breaker: "closed",
      inFlight: 0,
    },
    {
      notifier: "hook",
      outcomes: { delivered: 0, failed: 4, retried: 3, dead_lettered: 1 },
      breaker: "open",
      inFlight: 2,
    },
  ]);
});

Deno.test('notifierStats() reports flat counters as notifier "all"', () => {
  assert.deepEqual(notifierStats({ counters: { delivered: 2, failed: 1 } }), [
    { notifier: "all", outcomes: { delivered: 2, failed: 1 }, breaker: null, inFlight: null },
  ]);
});

Deno.test("notifierStats() gives nothing for a missing dispatcher", () => {
  assert.deepEqual(notifierStats(null), []);
  assert.deepEqual(notifierStats({}), []);
});
