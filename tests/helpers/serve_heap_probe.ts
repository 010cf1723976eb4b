/**
 * Run with `--v8-flags=--expose-gc`: sends `SLICES` slices of 64 KiB down one connection of `serve()`
 * that stays open, read at full speed, and prints the heap it holds then (bytes, after a full GC).
 * Used by tests/http/serve_heap_test.ts.
 */
import { serve } from "../../src/http/serve.ts";

const SLICES = Number(Deno.args[0] ?? 10_000);
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error("Run with --v8-flags=--expose-gc");
let produced = 0;
// One byte over a slice: every slice is a write the socket buffer refuses at first (a `drained` wait).
const chunk = new Uint8Array(64 * 1024 + 1).fill(0x61);
const allSent = Promise.withResolvers<void>();
const served = await serve({
  hostname: "127.0.0.1",
  port: 0,
  requestTimeoutMs: 5000,
  maxConnections: 8,
  maxBodyBytes: 1024,
  maxPendingBytes: 1 << 30,
  headers: {},
  onError: () => new Response("failed", { status: 500 }),
  onServerError: () => {},
}, () =>
  new Response(
    new ReadableStream<Uint8Array>({
      pull(controller) {
        if (produced >= SLICES) {
          // Stays open as a live stream does, with nothing more to send.
          allSent.resolve();
          return new Promise(() => {});
        }
        produced++;
        controller.enqueue(chunk);
      },
    }),
  ));
gc();
const before = Deno.memoryUsage().heapUsed;
const conn = await Deno.connect({ hostname: "127.0.0.1", port: served.port });
await conn.write(new TextEncoder().encode("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
const buf = new Uint8Array(1 << 20);
const reading = (async () => {
  while (await conn.read(buf).catch(() => null) !== null) { /* read at full speed */ }
})();
await allSent.promise;
await new Promise((resolve) => setTimeout(resolve, 200));
gc();
gc();
await Deno.stdout.write(
  new TextEncoder().encode(JSON.stringify({ heapGrowth: Deno.memoryUsage().heapUsed - before }) + "\n"),
);
conn.close();
await reading;
Deno.exit(0);
