/**
 * Serves a fetch-style handler (`Request` → `Response`) through `node:http`, for the limits a
 * server facing hostile clients needs and `Deno.serve` lacks.
 *
 * `Deno.serve` (Deno 2.9) has no header or request timeout and no connection cap: 2,000
 * connections that never finished their headers stayed open for 40 s and more, each holding
 * memory. Deno's `node:http` server honours Node's `headersTimeout` and `requestTimeout` (a client
 * that sends headers or body too slowly gets 408 and is closed; tried with a raw socket sending
 * half a header block: closed after the timeout, within the checking interval) and `maxHeaderSize`
 * (431); the connection cap is this file's own (`Connections`). The handler keeps the
 * web `Request`/`Response` types; this file is the only one that knows about Node's.
 *
 * The price is memory under a flood of requests, not per connection: 48,000 sequential requests
 * grew RSS from 45 to 105 MB here, against 44 to 54 MB with `Deno.serve` and 42 to 67 MB with bare
 * `node:http` (semi-space 8 MB as `deno task start`; heap used after a full GC unchanged at 7 MB,
 * so nothing is retained: V8 sizes its heap to the garbage of the web copies of each request and
 * answer). An operator API serves a few requests a second. Other ways were worse: a TCP front
 * that times out the header bytes before handing them to `Deno.serve` copies every byte twice,
 * and `Deno.serve` gives no hook on a connection before its headers are complete.
 *
 * @module
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { clientOf } from "./client.ts";

export interface ServeOptions {
  hostname: string;
  port: number;
  /**
   * Headers and body of a request must arrive within this; else 408 and the connection closes. An
   * answer the client does not take is held to it too: a connection whose written part has not
   * drained within this is closed (a slow reader must take `WRITE_SLICE` bytes per timeout).
   */
  requestTimeoutMs: number;
  /**
   * Open connections at once. One more takes the slot of the connection idle longest: one that has
   * not sent a whole request yet (headers and body) or waits for its next one; with none idle, it is
   * closed as it is accepted.
   */
  maxConnections: number;
  /** Larger request bodies get 413 and the connection is closed: the rest is never read. */
  maxBodyBytes: number;
  /**
   * Bytes of answers taken from handlers and not yet handed to the sockets, across connections: past
   * this, a new answer is replaced by 503 with `Retry-After` (the one that crosses it is still sent).
   */
  maxPendingBytes: number;
  /** Set on every answer, also on the ones this file gives itself (413, 400, 503). */
  headers: Record<string, string>;
  /** The answer when the handler throws. */
  onError: (err: unknown) => Response;
  /** An error of the listening server itself (e.g. out of file descriptors on accept). */
  onServerError: (err: unknown) => void;
}

export interface Served {
  readonly hostname: string;
  readonly port: number;
  /** Stops accepting, ends idle connections, and waits for the open answers up to `graceMs`. */
  shutdown(graceMs?: number): Promise<void>;
}

const JSON_TYPE = "application/json; charset=utf-8";

/** Idle keep-alive connections are closed after this, as Node does by default. */
const KEEP_ALIVE_MS = 5000;

/**
 * An answer is written in slices of this, each to be taken by the socket within the request timeout.
 * Written whole, a 30 MB `/api/sensors` went into the socket's user-space buffer at once and a client
 * that never read kept it there, with no timeout at all: 40 such clients, RSS +2,441 MB, all still
 * open 13 s later.
 */
const WRITE_SLICE = 64 * 1024;

/**
 * The open connections, each busy while a request it sent whole is answered, and otherwise idle since
 * it opened or its last answer ended. Node's own `maxConnections` closes every connection past the
 * cap as it is accepted, so clients that send half a header block (and then a byte now and then)
 * held every slot for the request timeout and shut everyone else out, a health check included:
 * 16 of them and four requests after, 0 answered (tests/http/serve_admission_test.ts). Taking the
 * slot of the connection idle longest lets a client that asks get its answer (a request is whole in
 * milliseconds), and the attacker's connections go first, being older.
 *
 * The slot is taken from the client (an address, an IPv6 /64: `clientOf`) that holds the most
 * connections: a flood from one address
 * otherwise took the slots of other clients' connections still sending their requests (requests sent
 * in two writes 100 ms apart while 400 half-sent connections came from one address: 8-16 of 20
 * closed, 4 runs). Behind a proxy every client has the proxy's address, and the rule is the
 * idle-longest one again.
 */
class Connections {
  readonly #open = new Map<Socket, { busy: number; idleSince: number; source: string }>();
  /** Open connections per client (`clientOf`). */
  readonly #perSource = new Map<string, number>();
  readonly #max: number;

  constructor(max: number) {
    this.#max = max;
  }

  /**
   * A connection accepted: it takes a free slot, or the slot of the idle-longest connection of the
   * address with the most connections (busy connections are never taken); else it is closed.
   */
  accept(socket: Socket): void {
    const source = clientOf(socket.remoteAddress ?? "");
    if (this.#open.size >= this.#max) {
      let victim: Socket | null = null;
      let most = 0;
      let since = Infinity;
      for (const [s, c] of this.#open) {
        if (c.busy !== 0) continue;
        const count = this.#perSource.get(c.source) ?? 0;
        if (count > most || (count === most && c.idleSince < since)) {
          victim = s;
          most = count;
          since = c.idleSince;
        }
      }
      if (victim === null) {
        socket.destroy();
        return;
      }
      this.#forget(victim);
      victim.destroy();
    }
    this.#open.set(socket, { busy: 0, idleSince: performance.now(), source });
    this.#perSource.set(source, (this.#perSource.get(source) ?? 0) + 1);
    socket.once("close", () => this.#forget(socket));
  }

  #forget(socket: Socket): void {
    const c = this.#open.get(socket);
    if (c === undefined) return;
    this.#open.delete(socket);
    const left = (this.#perSource.get(c.source) ?? 1) - 1;
    if (left === 0) this.#perSource.delete(c.source);
    else this.#perSource.set(c.source, left);
  }

  /** The connection's request arrived whole: it is busy until `res` ends. */
  busy(socket: Socket, res: ServerResponse): void {
    const c = this.#open.get(socket);
    if (c === undefined) return;
    c.busy++;
    res.once("close", () => {
      c.busy--;
      c.idleSince = performance.now();
    });
  }
}

/** What a handler knows of a request beyond the request itself. */
export interface RequestInfo {
  /** The peer's address (a proxy's, behind one); "" when the socket no longer has one. */
  remoteAddress: string;
  /** Who the peer is for fair shares: the address, or an IPv6 address's /64 (see `clientOf`). */
  client: string;
}

/** A fetch-style handler. */
export type Handler = (req: Request, info: RequestInfo) => Response | Promise<Response>;

/** What the answers being sent hold, across connections. */
interface Pending {
  bytes: number;
  readonly max: number;
}

export async function serve(
  opts: ServeOptions,
  handler: Handler,
): Promise<Served> {
  const pending: Pending = { bytes: 0, max: opts.maxPendingBytes };
  const connections = new Connections(opts.maxConnections);
  const server = createServer({
    headersTimeout: opts.requestTimeoutMs,
    requestTimeout: opts.requestTimeoutMs,
    // Node checks the timeouts on this interval (30 s by default), so a timeout is only as precise.
    connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(opts.requestTimeoutMs / 4))),
    keepAliveTimeout: KEEP_ALIVE_MS,
  }, (req, res) => {
    answer(req, res, opts, pending, connections, handler).catch(() => res.destroy());
  });
  // A client that asks first (`Expect: 100-continue`, as curl does for large bodies) is told 413
  // before it sends the body; Node would otherwise invite every body.
  server.on("checkContinue", (req, res) => {
    if (declaredLength(req) <= opts.maxBodyBytes) res.writeContinue();
    answer(req, res, opts, pending, connections, handler).catch(() => res.destroy());
  });
  server.on("connection", (socket: Socket) => connections.accept(socket));
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.hostname, () => {
      server.off("error", reject);
      resolve();
    });
  });
  server.on("error", opts.onServerError);
  const addr = server.address() as AddressInfo;
  return {
    hostname: addr.address,
    port: addr.port,
    async shutdown(graceMs = 5000) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const timer = setTimeout(() => server.closeAllConnections(), graceMs);
      await closed;
      clearTimeout(timer);
    },
  };
}

async function answer(
  req: IncomingMessage,
  res: ServerResponse,
  opts: ServeOptions,
  pending: Pending,
  connections: Connections,
  handler: Handler,
): Promise<void> {
  const body = await readBody(req, opts.maxBodyBytes);
  if (body === "aborted") return;
  connections.busy(req.socket, res);
  if (body === "too large") {
    const text = JSON.stringify({ error: `Request body is larger than ${opts.maxBodyBytes} bytes` });
    res.writeHead(413, { ...opts.headers, "content-type": JSON_TYPE, connection: "close" });
    // The unread rest is dropped with the connection, not read and thrown away. Closing with unread
    // input sends a reset, which on a slow network can overtake the answer: then the client sees
    // the connection reset instead of the 413, a refusal either way.
    res.end(text, () => req.socket.destroy());
    return;
  }
  let request: Request;
  try {
    request = toRequest(req, body);
  } catch {
    res.writeHead(400, { ...opts.headers, "content-type": JSON_TYPE, connection: "close" });
    res.end(JSON.stringify({ error: `Cannot read the request target "${req.url}"` }));
    return;
  }
  let response: Response;
  try {
    const remoteAddress = req.socket.remoteAddress ?? "";
    response = await handler(request, { remoteAddress, client: clientOf(remoteAddress) });
  } catch (err) {
    response = opts.onError(err);
  }
  await send(res, response, req.method === "HEAD", opts, pending);
}

/** Reads at most `max` bytes; says "too large" as soon as the declared or received size passes it. */
function readBody(
  req: IncomingMessage,
  max: number,
): Promise<Uint8Array<ArrayBuffer> | "too large" | "aborted"> {
  if (declaredLength(req) > max) {
    req.pause();
    return Promise.resolve("too large");
  }
  return new Promise((resolve) => {
    const chunks: Uint8Array[] = [];
    let size = 0;
    const done = (result: Uint8Array<ArrayBuffer> | "too large" | "aborted") => {
      req.off("data", onData);
      req.pause();
      resolve(result);
    };
    const onData = (chunk: Uint8Array) => {
      size += chunk.byteLength;
      if (size > max) return done("too large");
      chunks.push(chunk);
    };
    req.on("data", onData);
    req.once("end", () => {
      const all = new Uint8Array(size);
      let at = 0;
      for (const c of chunks) {
        all.set(c, at);
        at += c.byteLength;
      }
      done(all);
    });
    req.once("error", () => done("aborted"));
    req.once("close", () => {
      if (!req.complete) done("aborted");
    });
  });
}

function declaredLength(req: IncomingMessage): number {
  return Number(req.headers["content-length"] ?? 0);
}

function toRequest(req: IncomingMessage, body: Uint8Array<ArrayBuffer>): Request {
  // The URL's authority is the socket's own address, never the Host header: a Host such as
  // "evil.example/x?" would otherwise change the path. Handlers read Host from the headers.
  const path = req.url ?? "";
  if (!path.startsWith("/")) throw new TypeError(`Request target "${path}" is not a path`);
  const local = req.socket.localAddress ?? "127.0.0.1";
  const authority = local.includes(":") ? `[${local}]` : local;
  const url = new URL(`http://${authority}:${req.socket.localPort}${path}`);
  const headers = new Headers();
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    headers.append(req.rawHeaders[i]!, req.rawHeaders[i + 1]!);
  }
  const method = req.method ?? "GET";
  const hasBody = method !== "GET" && method !== "HEAD" && body.byteLength > 0;
  return new Request(url, { method, headers, ...(hasBody ? { body } : {}) });
}

/**
 * Streams the answer with backpressure; a client that hangs up cancels the body (ends an SSE stream).
 * A client that does not take a slice within the request timeout is disconnected, and the answer is
 * refused (503) while answers already pending pass `maxPendingBytes`.
 */
async function send(
  res: ServerResponse,
  response: Response,
  head: boolean,
  opts: ServeOptions,
  pending: Pending,
): Promise<void> {
  const headers: Record<string, string> = { ...opts.headers };
  response.headers.forEach((value, key) => headers[key] = value);
  if (head || response.body === null) {
    await response.body?.cancel();
    res.writeHead(response.status, headers);
    res.end();
    return;
  }
  const reader = response.body.getReader();
  // The first chunk before the decision, so answers starting together see each other's bytes.
  let next = await reader.read();
  if (pending.bytes > pending.max) {
    await reader.cancel().catch(() => {});
    const mib = (pending.bytes / 1024 / 1024).toFixed(1);
    res.writeHead(503, { ...opts.headers, "content-type": JSON_TYPE, "retry-after": "5" });
    res.end(JSON.stringify({ error: `Busy: ${mib} MiB of answers wait for slow clients; retry later` }));
    return;
  }
  res.writeHead(response.status, headers);
  res.flushHeaders();
  let closed = false;
  const gone = new Promise<void>((resolve) => res.once("close", resolve));
  gone.then(() => {
    closed = true;
    reader.cancel().catch(() => {});
  });
  // A body that errors ends the connection at once, also while a write waits for the client to
  // drain: the live feed errors the stream of a client that stopped reading to give its slot to
  // another (`LiveFeed.evictStalled`), and that wait lasts up to the request timeout.
  reader.closed.catch(() => res.destroy());
  while (!next.done && !closed) {
    const chunk = next.value;
    let left = chunk.byteLength;
    pending.bytes += left;
    try {
      for (let at = 0; at < chunk.byteLength && !closed; at += WRITE_SLICE) {
        const slice = chunk.subarray(at, at + WRITE_SLICE);
        if (!res.write(slice) && !closed && !await drained(res, opts.requestTimeoutMs)) {
          res.destroy();
          return;
        }
        left -= slice.byteLength;
        pending.bytes -= slice.byteLength;
      }
    } finally {
      pending.bytes -= left;
    }
    next = await reader.read();
  }
  if (!closed) res.end();
}

/**
 * Whether the written data drained (or the connection closed) within `ms`. Listeners, each removed
 * once settled: a race with the connection's `gone` promise left a reaction on it per call until the
 * connection closed, ~1.2 KB of heap per 64 KiB slice sent (a long-lived stream grew for ever: 20,000
 * slices, 1.25 GiB read at full speed on one connection, held 23 MB).
 */
function drained(res: ServerResponse, ms: number): Promise<boolean> {
  if (res.destroyed) return Promise.resolve(true);
  return new Promise<boolean>((resolve) => {
    const settle = (ok: boolean) => {
      clearTimeout(timer);
      res.off("drain", onDrain);
      res.off("close", onClose);
      resolve(ok);
    };
    const onDrain = () => settle(true);
    const onClose = () => settle(true);
    const timer = setTimeout(() => settle(false), ms);
    res.once("drain", onDrain);
    res.once("close", onClose);
  });
}
