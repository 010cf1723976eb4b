/**
 * `GET /api/stream` needs no token, and its slots are few (`HTTP_MAX_STREAMS`): clients that open
 * streams and never read must not keep the dashboard out. A new stream takes the slot of the one
 * stalled longest; streams whose clients read keep theirs.
 */
import assert from "node:assert/strict";
import type { Buffer } from "node:buffer";
import { connect as netConnect, type Socket } from "node:net";
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

/** A stream opened from `localAddress` whose client reads everything; resolves once its answer began. */
function readsFrom(
  url: string,
  localAddress: string,
): Promise<{ status: number; socket: Socket; ended: Promise<void> }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host: hostname, port: Number(port), localAddress });
    let head = "";
    let resolved = false;
    const ended = new Promise<void>((r) => {
      socket.once("close", () => r());
    });
    socket.on("error", (e) => resolved ? undefined : reject(e));
    socket.on("data", (d: Buffer) => {
      if (resolved) return;
      head += d.toString("latin1");
      const status = /^HTTP\/1\.1 (\d{3})/.exec(head);
      if (status !== null) {
        resolved = true;
        resolve({ status: Number(status[1]), socket, ended });
      }
    });
    socket.write(`GET /api/stream HTTP/1.1\r\nHost: ${hostname}:${port}\r\n\r\n`);
  });
}

Deno.test("streams from one address that read take no slot of another address: the newcomer gets one of theirs", async () => {
  const lines: string[] = [];
  const live = new LiveFeed({ flushMs: 50 });
  const http = await testHttpServer({
    logger: createLogger({ level: "info", sink: { write: (l) => lines.push(l), pretty: false } }),
    live,
    mode: "embedded",
    maxStreams: STREAMS,
    streamStallMs: STALL_MS,
  });
  http.attach(fakeService({ sensors: 100 }));
  const abort = new AbortController();
  const crowd: Socket[] = [];
  let reading: Promise<void> = Promise.resolve();
  try {
    const ended: Promise<number>[] = [];
    for (let i = 0; i < STREAMS; i++) {
      const s = await readsFrom(http.url, "127.0.0.2");
      assert.equal(s.status, 200);
      crowd.push(s.socket);
      ended.push(s.ended.then(() => i));
    }
    await sleep(STALL_MS * 2);
    // Every one of them reads: none is stalled, yet one address holds every slot.
    const got = await dashboard(http.url, abort.signal);
    reading = got.reading;
    assert.equal(got.status, 200, "the dashboard from 127.0.0.1 got a slot");
    assert.equal(live.clients, STREAMS);
    const first = await Promise.race([...ended, sleep(10_000).then(() => -1)]);
    assert.ok(first >= 0, "one of 127.0.0.2's streams was closed");
    assert.equal(lines.filter((l) => l.includes("the address with the most")).length, 1, lines.join("\n"));
    // That address asks again: it already holds more than its share, so it waits.
    const again = await readsFrom(http.url, "127.0.0.2");
    crowd.push(again.socket);
    assert.equal(again.status, 503);
  } finally {
    abort.abort();
    await reading;
    for (const s of crowd) s.destroy();
    await http.close();
  }
});
