/**
 * `POST /api/whatif`'s bounds on a real HTTP server (in this process, on 127.0.0.1), with stand-in
 * histories whose reading the test holds or fails: one what-if at a time, the window passed on,
 * a history that cannot be read answered 503.
 */
import assert from "node:assert/strict";
import type { HistoryRead, WhatIfHistory } from "../../src/backtest/whatif.ts";
import type { InputRecord } from "../../src/contract/records.ts";
import { testHttpServer } from "../helpers/http.ts";
import { registerSecret } from "../../src/log.ts";

const RULE = "id: hot\nsensor_type: temperature\nthreshold: { max: 30 }\npriority: high\n";

const EVENT: InputRecord = {
  topic: "t",
  partition: 0,
  offset: "0",
  key: null,
  value: JSON.stringify({
    event_id: "e-1",
    sensor_id: "temp-1",
    sensor_type: "temperature",
    value: 40,
    unit: "°C",
    timestamp: "2026-01-01T00:00:00.000Z",
  }),
};

/** A history whose next read waits for `release()`, or fails with `failWith`. */
function heldHistory() {
  let release = () => {};
  const h = {
    source: "topic" as const,
    label: 'topic "held"',
    maxWindowMs: 7_200_000,
    maxEvents: 10,
    windows: [] as number[],
    failWith: null as Error | null,
    /** Resolves once a read has begun. */
    started: Promise.withResolvers<void>(),
    release: () => release(),
    async read(windowMs: number): Promise<HistoryRead> {
      h.windows.push(windowMs);
      if (h.failWith !== null) throw h.failWith;
      const gate = Promise.withResolvers<void>();
      release = gate.resolve;
      h.started.resolve();
      await gate.promise;
      async function* batches(): AsyncGenerator<InputRecord[]> {
        yield [EVENT];
      }
      return {
        batches: batches(),
        capped: false,
        decode: { requireKey: false },
        close: () => Promise.resolve(),
      };
    },
  } satisfies WhatIfHistory & Record<string, unknown>;
  return h;
}

async function server(history: WhatIfHistory | undefined) {
  return await testHttpServer({
    mode: "kafka",
    ...(history !== undefined ? { history } : {}),
  });
}

async function post(url: string, body: unknown) {
  const res = await fetch(`${url}/api/whatif`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: res.status, retryAfter: res.headers.get("retry-after"), body: await res.json() };
}

Deno.test("POST /api/whatif runs one what-if at a time: another meanwhile is answered 429, and after it 200", async () => {
  const history = heldHistory();
  const http = await server(history);
  try {
    const first = post(http.url, { rule: RULE, window: "90m" });
    await history.started.promise;
    const second = await post(http.url, { rule: RULE });
    assert.equal(second.status, 429);
    assert.equal(second.retryAfter, "5");
    assert.match(second.body.error, /already running/);
    // A request with a problem is still told its problem, not that it is busy.
    assert.equal((await post(http.url, { rule: RULE, window: "3h" })).status, 400);
    history.release();
    const done = await first;
    assert.equal(done.status, 200, JSON.stringify(done.body));
    assert.equal(done.body.history.events, 1);
    assert.equal(done.body.history.window_seconds, 5400);
    assert.equal(done.body.report.episodes.length, 1);
    history.started = Promise.withResolvers<void>();
    const third = post(http.url, { rule: RULE });
    await history.started.promise;
    history.release();
    assert.equal((await third).status, 200);
    assert.deepEqual(history.windows, [5_400_000, 3_600_000]);
  } finally {
    await http.close();
  }
});

Deno.test("POST /api/whatif answers 503 with the reason, secrets redacted, when its history cannot be read, and frees its slot", async () => {
  const history = heldHistory();
  const secret = "sasl-pw-7f3a1c9e";
  registerSecret(secret);
  history.failWith = new Error(`Connection refused to 127.0.0.1:9 (password ${secret})`);
  const http = await server(history);
  try {
    const failed = await post(http.url, { rule: RULE });
    assert.equal(failed.status, 503);
    assert.equal(
      failed.body.error,
      'Cannot read topic "held": Connection refused to 127.0.0.1:9 (password [REDACTED])',
    );
    assert.equal((await post(http.url, { rule: RULE })).status, 503);
    history.failWith = null;
    const ok = post(http.url, { rule: RULE });
    await history.started.promise;
    history.release();
    assert.equal((await ok).status, 200);
  } finally {
    await http.close();
  }
});

Deno.test("POST /api/whatif without a history is answered 409", async () => {
  const http = await server(undefined);
  try {
    assert.equal((await post(http.url, { rule: RULE })).status, 409);
  } finally {
    await http.close();
  }
});
