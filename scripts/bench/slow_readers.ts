/**
 * Clients that ask and never read, against `serve()` answering a 30 MB body (`/api/sensors` at the
 * stats limit, 100,000 sensors: 30.3 MB): the process's RSS once they have asked, and how many
 * connections the server still holds after a few request timeouts.
 *
 *   deno run --allow-net=127.0.0.1 scripts/bench/slow_readers.ts [--clients 40] [--timeout-ms 10000]
 *
 * @module
 */
import { parseArgs } from "node:util";
import { serve } from "../../src/http/serve.ts";

const { values } = parseArgs({
  options: { clients: { type: "string", default: "40" }, "timeout-ms": { type: "string", default: "2000" } },
});
const clients = Number(values.clients);
const timeoutMs = Number(values["timeout-ms"]);
const MB = 1_000_000;

// One string shared by every answer, as the cached `/api/sensors` is: what each connection adds is
// its own encoding and buffers.
const body = JSON.stringify({ sensors: "x".repeat(30 * MB) });
let answered = 0;
const server = await serve({
  hostname: "127.0.0.1",
  port: 0,
  requestTimeoutMs: timeoutMs,
  maxConnections: 256,
  maxBodyBytes: 64 * 1024,
  maxPendingBytes: 64 * 1024 * 1024,
  headers: {},
  onError: () => new Response("failed", { status: 500 }),
  onServerError: () => {},
}, () => {
  answered++;
  return new Response(body, { headers: { "content-type": "application/json" } });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const rss = () => Math.round(Deno.memoryUsage().rss / MB);
const before = rss();
const conns: Deno.Conn[] = [];
const request = new TextEncoder().encode("GET /api/sensors HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
for (let i = 0; i < clients; i++) {
  const c = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  await c.write(request);
  conns.push(c);
}
// Every request answered (bounded: 600 polls).
for (let i = 0; i < 600 && answered < clients; i++) await sleep(50);
await sleep(500);
const peak = rss();
// Still open: a read that neither ends nor fails at once. Waiting over a few timeouts first.
await sleep(3 * timeoutMs + 1000);
// Still open: reading now, the connection does not end within 2 s (below the 5 s keep-alive, so a
// server that sends the whole answer to a reader does not close it before that either).
const ends = await Promise.all(conns.map(async (c) => {
  const buf = new Uint8Array(1 << 20);
  const read = (async () => {
    for (let i = 0; i < 10_000; i++) if (await c.read(buf).catch(() => null) === null) return true;
    return false;
  })();
  return await Promise.race([read, sleep(2000).then(() => false)]);
}));
const open = ends.filter((ended) => !ended).length;
// deno-lint-ignore no-console
console.log(
  `${clients} clients not reading a ${
    (body.length / MB).toFixed(1)
  } MB answer: RSS ${before} -> ${peak} MB ` +
    `(+${peak - before}); ${answered} answered; ${open} connections still open ${
      3 * timeoutMs + 1000
    } ms later`,
);
for (const c of conns) c.close();
await server.shutdown(500);
