/**
 * `serve()` against clients that ask and never read the answer: what the server holds for them, and
 * that it lets them go. Raw TCP clients on 127.0.0.1, the real server.
 */
import assert from "node:assert/strict";
import { serve, type ServeOptions } from "../../src/http/serve.ts";

const MiB = 1024 * 1024;
const encoder = new TextEncoder();

const OPTIONS: ServeOptions = {
  hostname: "127.0.0.1",
  port: 0,
  requestTimeoutMs: 300,
  maxConnections: 64,
  maxBodyBytes: 1024,
  maxPendingBytes: 64 * MiB,
  headers: {},
  onError: () => new Response("failed", { status: 500 }),
  onServerError: () => {},
};

/** Resolves to `fallback` when `promise` has not settled within `ms`: every wait here is bounded. */
function within<T, F>(promise: Promise<T>, ms: number, fallback: F): Promise<T | F> {
  let timer: ReturnType<typeof setTimeout>;
  return Promise.race([
    promise,
    new Promise<F>((resolve) => timer = setTimeout(() => resolve(fallback), ms)),
  ]).finally(() => clearTimeout(timer));
}

/** Sends a GET and reads nothing. */
async function ask(port: number, path = "/"): Promise<Deno.Conn> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const request = encoder.encode(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
  for (let at = 0; at < request.length;) at += await conn.write(request.subarray(at));
  return conn;
}

/** Reads until the server closes the connection (true), or `ms` pass (false). */
async function closedBy(conn: Deno.Conn, ms: number): Promise<{ closed: boolean; head: string }> {
  let head = "";
  const read = (async () => {
    const buf = new Uint8Array(256 * 1024);
    for (;;) {
      const n = await conn.read(buf).catch(() => null);
      if (n === null) return true;
      if (head.length < 200) head += new TextDecoder().decode(buf.subarray(0, Math.min(n, 200)));
    }
  })();
  return { closed: await within(read, ms, false), head };
}

/** Reads the status line and headers only (the first bytes), leaving the body unread. */
async function status(conn: Deno.Conn): Promise<{ status: number; head: string }> {
  const buf = new Uint8Array(512);
  const n = await within(conn.read(buf), 20_000, null);
  const head = n === null ? "" : new TextDecoder().decode(buf.subarray(0, n));
  return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0), head };
}

/**
 * An answer whose body never ends (a live stream, or a very large view), counting what the server
 * pulled from it; it stops by itself at `limit` bytes, so no test runs without an end.
 */
function endless(limit: number) {
  const bodies: { pulled: number; cancelled: boolean }[] = [];
  const chunk = new Uint8Array(MiB).fill(0x61);
  const handler = () => {
    const body = { pulled: 0, cancelled: false };
    bodies.push(body);
    return new Response(
      new ReadableStream<Uint8Array>({
        pull(controller) {
          if (body.pulled >= limit) return controller.close();
          body.pulled += chunk.byteLength;
          controller.enqueue(chunk);
        },
        cancel() {
          body.cancelled = true;
        },
      }),
    );
  };
  return { bodies, handler };
}

Deno.test("serve() closes a connection whose answer the client does not take within the request timeout", async () => {
  const { bodies, handler } = endless(512 * MiB);
  const server = await serve(OPTIONS, handler);
  const conns: Deno.Conn[] = [];
  try {
    for (let i = 0; i < 8; i++) conns.push(await ask(server.port));
    // Bounded wait, far above the 300 ms timeout: the assertion is that the server lets them go.
    // The clients read nothing until then; reading now only sees what the server sent before closing.
    await within(
      (async () => {
        for (let i = 0; i < 1000 && !(bodies.length === 8 && bodies.every((b) => b.cancelled)); i++) {
          await new Promise((r) => setTimeout(r, 20));
        }
      })(),
      20_000,
      null,
    );
    assert.equal(bodies.length, 8);
    assert.deepEqual(bodies.map((b) => b.cancelled), Array(8).fill(true), "every answer's body is cancelled");
    const ends = await Promise.all(conns.map((c) => closedBy(c, 20_000)));
    assert.ok(ends.every((e) => e.closed), "every connection is closed by the server");
    assert.ok(ends.every((e) => e.head.startsWith("HTTP/1.1 200")));
    // What the server pulled for a client that reads nothing: the socket buffers, not the body.
    const most = Math.max(...bodies.map((b) => b.pulled));
    assert.ok(most <= 16 * MiB, `${most / MiB} MiB pulled for one client`);
  } finally {
    for (const c of conns) c.close();
    await server.shutdown(1000);
  }
});

Deno.test("serve() answers 503 with Retry-After while answers waiting for slow clients pass maxPendingBytes", async () => {
  // 48 MiB per answer, past the socket buffers of loopback (a few MiB), so most stays with the server.
  const body = new Uint8Array(48 * MiB).fill(0x62);
  let answered = 0;
  const server = await serve({ ...OPTIONS, requestTimeoutMs: 60_000, maxPendingBytes: 32 * MiB }, () => {
    answered++;
    return new Response(body);
  });
  const conns: Deno.Conn[] = [];
  try {
    // One at a time, each waiting for its status line: the first one's body is then pending.
    const first = await ask(server.port);
    conns.push(first);
    assert.equal((await status(first)).status, 200);
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) {
      const conn = await ask(server.port);
      conns.push(conn);
      const s = await status(conn);
      statuses.push(s.status);
      if (s.status === 503) assert.match(s.head, /retry-after: \d+/i);
    }
    assert.deepEqual(statuses, [503, 503, 503, 503], "no more answers while one slow client holds 48 MiB");
    assert.equal(answered, 5, "the handler ran for each; the answer was held back");
    // The slow client goes: the next request is answered.
    first.close();
    conns.shift();
    let after = 0;
    for (let i = 0; i < 100 && after !== 200; i++) {
      const conn = await ask(server.port);
      conns.push(conn);
      after = (await status(conn)).status;
      if (after !== 200) await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(after, 200);
  } finally {
    for (const c of conns) c.close();
    await server.shutdown(1000);
  }
});
