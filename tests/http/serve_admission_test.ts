/**
 * `serve()` full of connections that hold a slot without asking anything (half a header block sent,
 * then nothing: the slow-loris attack), against a client that asks: the slot of the connection idle
 * longest goes to the new one. Connections busy with an answer are never taken. Raw TCP clients on
 * 127.0.0.1, the real server.
 */
import assert from "node:assert/strict";
import { connect as netConnect, type Socket } from "node:net";
import type { Buffer } from "node:buffer";
import { serve, type ServeOptions } from "../../src/http/serve.ts";

const encoder = new TextEncoder();
const MAX = 16;

const OPTIONS: ServeOptions = {
  hostname: "127.0.0.1",
  port: 0,
  // Longer than the test: only admission can let the asking client in.
  requestTimeoutMs: 60_000,
  maxConnections: MAX,
  maxBodyBytes: 1024,
  maxPendingBytes: 64 * 1024 * 1024,
  headers: {},
  onError: () => new Response("failed", { status: 500 }),
  onServerError: () => {},
};

async function write(conn: Deno.Conn, text: string): Promise<void> {
  const bytes = encoder.encode(text);
  for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
}

/** A connection that sent half a request's headers and nothing more, once the server has it. */
async function halfSent(port: number): Promise<Deno.Conn> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await write(conn, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ");
  return conn;
}

/** One request on a new connection: its status, 0 when the server closed the connection instead. */
async function ask(port: number, path: string): Promise<number> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await write(conn, `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
    const buf = new Uint8Array(512);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const n = await Promise.race([
      conn.read(buf).catch(() => null),
      new Promise<null>((r) => timer = setTimeout(() => r(null), 10_000)),
    ]);
    clearTimeout(timer);
    if (n === null) return 0;
    return Number(/^HTTP\/1\.1 (\d{3})/.exec(new TextDecoder().decode(buf.subarray(0, n)))?.[1] ?? 0);
  } finally {
    conn.close();
  }
}

/** True once the server closed `conn` (a read ends), false if it is still open after `ms`. */
async function closedWithin(conn: Deno.Conn, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const closed = await Promise.race([
    conn.read(new Uint8Array(1024)).then(() => true, () => true),
    new Promise<false>((r) => timer = setTimeout(() => r(false), ms)),
  ]);
  clearTimeout(timer);
  return closed;
}

Deno.test("serve(): every slot held by a half-sent request, new clients still get their answers, and the oldest idle connection goes", async () => {
  const server = await serve(OPTIONS, () => new Response("ok"));
  const held: Deno.Conn[] = [];
  try {
    for (let i = 0; i < MAX; i++) {
      held.push(await halfSent(server.port));
      // Each is older than the next: the first is the one to go.
      await new Promise((r) => setTimeout(r, 5));
    }
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push(await ask(server.port, "/healthz"));
    assert.deepEqual(statuses, [200, 200, 200, 200]);
    // The oldest gave its slot to the first; each next one took the slot the one before left.
    const closed = await Promise.all(held.map((c) => closedWithin(c, 500)));
    assert.deepEqual(closed.map((c, i) => c ? i : -1).filter((i) => i >= 0), [0]);
  } finally {
    for (const c of held) {
      try {
        c.close();
      } catch { /* closed by the server */ }
    }
    await server.shutdown(100);
  }
});

Deno.test("serve(): a connection busy with an answer keeps its slot; with every slot busy a new one is closed", async () => {
  // Answers that never end (bounded by the test's shutdown): each connection holds its slot busy.
  const bodies: ReadableStreamDefaultController<Uint8Array>[] = [];
  const server = await serve(OPTIONS, () =>
    new Response(
      new ReadableStream<Uint8Array>({
        start(c) {
          bodies.push(c);
          c.enqueue(encoder.encode("data: hello\n\n"));
        },
      }),
    ));
  const busy: Deno.Conn[] = [];
  try {
    for (let i = 0; i < MAX; i++) {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
      await write(conn, "GET /stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
      await conn.read(new Uint8Array(512));
      busy.push(conn);
    }
    assert.equal(await ask(server.port, "/healthz"), 0, "no slot for the new connection");
    const closed = await Promise.all(busy.map((c) => closedWithin(c, 300)));
    assert.deepEqual(closed.filter((c) => c), [], "no busy connection was closed");
  } finally {
    for (const b of bodies) {
      try {
        b.close();
      } catch { /* cancelled */ }
    }
    for (const c of busy) c.close();
    await server.shutdown(100);
  }
});

Deno.test("serve(): while 200 half-sent requests keep coming, 20 requests between them are all answered", async () => {
  const server = await serve(OPTIONS, () => new Response("ok"));
  const attackers: Deno.Conn[] = [];
  let stop = false;
  // Bounded: 200 connections, each sent half a header block, as fast as they connect.
  const attack = (async () => {
    for (let i = 0; i < 200 && !stop; i++) {
      attackers.push(await halfSent(server.port));
      if (i % 10 === 0) await new Promise((r) => setTimeout(r, 1));
    }
  })();
  try {
    const statuses = [];
    for (let i = 0; i < 20; i++) statuses.push(await ask(server.port, "/healthz"));
    assert.deepEqual(statuses.filter((s) => s !== 200), [], `statuses: ${statuses.join(",")}`);
  } finally {
    stop = true;
    await attack;
    for (const c of attackers) {
      try {
        c.close();
      } catch { /* closed by the server */ }
    }
    await server.shutdown(100);
  }
});

/** A node:net connection from `localAddress` (any of 127.0.0.0/8 reaches the server on 127.0.0.1). */
function connectFrom(port: number, localAddress: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host: "127.0.0.1", port, localAddress });
    socket.once("connect", () => resolve(socket));
    socket.once("error", reject);
  });
}

/**
 * One request sent in two halves `pauseMs` apart (a client on a slow network), on a connection from
 * `localAddress`: its status, 0 when the server closed the connection instead.
 */
async function askSlowly(port: number, localAddress: string, pauseMs: number): Promise<number> {
  const socket = await connectFrom(port, localAddress);
  try {
    let answer = "";
    const ended = new Promise<void>((resolve) => {
      socket.on("data", (d: Buffer) => answer += d.toString("latin1"));
      socket.once("close", () => resolve());
      socket.once("error", () => resolve());
    });
    socket.write("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    await new Promise((r) => setTimeout(r, pauseMs));
    if (!socket.destroyed) socket.write("Connection: close\r\n\r\n");
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([ended, new Promise((r) => timer = setTimeout(r, 10_000))]);
    clearTimeout(timer);
    return Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? 0);
  } finally {
    socket.destroy();
  }
}

Deno.test("serve(): a flood of half-sent requests from one address takes slots from itself, not from clients of other addresses mid-request", async () => {
  const server = await serve(OPTIONS, () => new Response("ok"));
  const attackers: Socket[] = [];
  let stop = false;
  // Bounded: 400 connections from 127.0.0.2, each sent half a header block, as fast as they connect.
  const attack = (async () => {
    for (let i = 0; i < 400 && !stop; i++) {
      const s = await connectFrom(server.port, "127.0.0.2").catch(() => null);
      if (s === null) continue;
      s.on("error", () => {});
      s.write("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ");
      attackers.push(s);
      if (i % 10 === 0) await new Promise((r) => setTimeout(r, 1));
    }
  })();
  try {
    // Each from 127.0.0.1, its request in two halves 100 ms apart, a few at a time.
    const statuses: number[] = [];
    for (let round = 0; round < 5; round++) {
      statuses.push(...await Promise.all([0, 1, 2, 3].map(() => askSlowly(server.port, "127.0.0.1", 100))));
    }
    assert.deepEqual(statuses.filter((s) => s !== 200), [], `statuses: ${statuses.join(",")}`);
  } finally {
    stop = true;
    await attack;
    for (const s of attackers) s.destroy();
    await server.shutdown(100);
  }
});
