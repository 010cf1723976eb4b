/**
 * `GET /api/stream` needs no token, and its slots are few (`HTTP_MAX_STREAMS`): clients that open
 * streams and never read must not keep the dashboard out. A new stream takes the slot of the one
 * stalled longest; streams whose clients read keep theirs.
 */
import assert from "node:assert/strict";
import { LiveFeed } from "../../src/http/live.ts";
import { createLogger } from "../../src/log.ts";
import { fakeService } from "../helpers/fake_service.ts";
import { testHttpServer } from "../helpers/http.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Opens a stream and never reads from it. */
async function neverReads(url: string): Promise<Deno.TcpConn> {
  const { hostname, port } = new URL(url);
  const conn = await Deno.connect({ hostname, port: Number(port) });
  await conn.write(new TextEncoder().encode(`GET /api/stream HTTP/1.1\r\nHost: ${hostname}:${port}\r\n\r\n`));
  return conn;
}

/** Reads a raw connection to its end; how many bytes came. */
async function readToEnd(conn: Deno.Conn): Promise<number> {
  const buf = new Uint8Array(256 * 1024);
  let bytes = 0;
  for (let i = 0; i < 100_000; i++) {
    const n = await conn.read(buf).catch(() => null);
    if (n === null) return bytes;
    bytes += n;
  }
  return bytes;
}

/** A dashboard's stream: reads it while `reading` and reports its status. */
async function dashboard(
  url: string,
  signal: AbortSignal,
): Promise<{ status: number; reading: Promise<void> }> {
  const res = await fetch(`${url}/api/stream`, { signal });
  if (res.status !== 200) {
    await res.body?.cancel();
    return { status: res.status, reading: Promise.resolve() };
  }
  const reading = (async () => {
    try {
      for await (const _ of res.body!) { /* a dashboard takes every message */ }
    } catch { /* aborted at the end of the test */ }
  })();
  return { status: 200, reading };
}

const STREAMS = 3;
const STALL_MS = 300;

Deno.test("a new stream takes the slot of a stream whose client never reads", async () => {
  const lines: string[] = [];
  const live = new LiveFeed();
  // Settings in a variable: `streamStallMs` is an option this change adds.
  const limits = { maxStreams: STREAMS, streamStallMs: STALL_MS, requestTimeoutMs: 60_000 };
  const http = await testHttpServer({
    logger: createLogger({ level: "info", sink: { write: (l) => lines.push(l), pretty: false } }),
    live,
    mode: "embedded",
    ...limits,
  });
  // A client that does not read is seen once the kernel holds all it will for it: 3.9 MB on loopback
  // here (the send buffer grows to tcp_wmem's 4 MB), until then the server hands it every chunk.
  // 20,000 sensors are a first picture of ~5.8 MB.
  http.attach(fakeService({ sensors: 20_000 }));
  const stalled: Deno.TcpConn[] = [];
  const abort = new AbortController();
  let reading: Promise<void> = Promise.resolve();
  try {
    for (let i = 0; i < STREAMS; i++) stalled.push(await neverReads(http.url));
    for (let i = 0; i < 100 && live.clients < STREAMS; i++) await sleep(50);
    assert.equal(live.clients, STREAMS);
    // The dashboard retries as its EventSource would, a bounded number of times.
    let status = 0;
    for (let attempt = 0; attempt < 40; attempt++) {
      const got = await dashboard(http.url, abort.signal);
      status = got.status;
      reading = got.reading;
      if (status === 200) break;
      await sleep(100);
    }
    assert.equal(
      status,
      200,
      `the dashboard's stream got ${status} while ${STREAMS} clients held theirs unread`,
    );
    assert.equal(live.clients, STREAMS, "one stalled stream made room, no more");
    const evicted = lines.filter((l) => l.includes("stalled"));
    assert.equal(evicted.length, 1, lines.join("\n"));
    // The evicted stream's connection is closed by the server: one of the stalled clients sees its end.
    const first = await Promise.race(stalled.map((c, i) => readToEnd(c).then(() => i)));
    assert.ok(first >= 0);
  } finally {
    abort.abort();
    await reading;
    for (const c of stalled) {
      try {
        c.close();
      } catch { /* closed by the server */ }
    }
    await http.close();
  }
});

Deno.test("streams whose clients read keep their slots: one more gets 503", async () => {
  const live = new LiveFeed({ flushMs: 50 });
  const limits = { maxStreams: 2, streamStallMs: STALL_MS };
  const http = await testHttpServer({ live, mode: "embedded", ...limits });
  http.attach(fakeService({ sensors: 5000 }));
  const abort = new AbortController();
  const held: Promise<void>[] = [];
  try {
    for (let i = 0; i < 2; i++) {
      const d = await dashboard(http.url, abort.signal);
      assert.equal(d.status, 200);
      held.push(d.reading);
    }
    // Past the stall threshold, with flushes going out to both.
    await sleep(STALL_MS * 3);
    const beyond = await dashboard(http.url, abort.signal);
    assert.equal(beyond.status, 503);
    assert.equal(live.clients, 2);
  } finally {
    abort.abort();
    await Promise.all(held);
    await http.close();
  }
});
