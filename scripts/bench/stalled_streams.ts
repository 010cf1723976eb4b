/**
 * `HTTP_MAX_STREAMS` live streams held by clients that never read, then a dashboard asking for its
 * own: its status, how long until its stream answered and until its first picture was read, and how
 * many stalled streams the server closed for it. The real server (`startHttpServer`) over a fleet of
 * `--sensors` kept in memory, no engine, no Kafka.
 *
 *   deno run --allow-net=127.0.0.1 --allow-read=. --allow-env scripts/bench/stalled_streams.ts [--streams 64] [--sensors 20000] [--wait-ms 6000]
 *
 * A client that does not read is seen only once the kernel holds all it will for it (3.9 MB on
 * loopback here), so the fleet's first picture must be larger than that: 20,000 sensors are 5.8 MB.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { LiveFeed } from "../../src/http/live.ts";
import { createLogger } from "../../src/log.ts";
import { fakeService } from "../../tests/helpers/fake_service.ts";
import { testHttpServer } from "../../tests/helpers/http.ts";

const { values } = parseArgs({
  options: {
    streams: { type: "string", default: "64" },
    sensors: { type: "string", default: "20000" },
    "wait-ms": { type: "string", default: "6000" },
  },
});
const streams = Number(values.streams);
const sensors = Number(values.sensors);
const waitMs = Number(values["wait-ms"]);

const service = fakeService({ sensors, digits: 6 });

const lines: string[] = [];
const live = new LiveFeed();
const http = await testHttpServer({
  logger: createLogger({ level: "info", sink: { write: (l) => lines.push(l), pretty: false } }),
  live,
  mode: "embedded",
  maxStreams: streams,
});
http.attach(service);
const { hostname, port } = new URL(http.url);
const held: Deno.TcpConn[] = [];
for (let i = 0; i < streams; i++) {
  const conn = await Deno.connect({ hostname, port: Number(port) });
  await conn.write(new TextEncoder().encode(`GET /api/stream HTTP/1.1\r\nHost: ${hostname}\r\n\r\n`));
  held.push(conn);
}
for (let i = 0; i < 200 && live.clients < streams; i++) await new Promise((r) => setTimeout(r, 50));
// deno-lint-ignore no-console
console.log(`${live.clients} streams held by clients that never read; waiting ${waitMs} ms`);
await new Promise((r) => setTimeout(r, waitMs));

const started = performance.now();
const res = await fetch(`${http.url}/api/stream`);
const answeredMs = performance.now() - started;
let pictureMs: number | null = null;
if (res.status === 200) {
  let text = "";
  for await (const chunk of res.body!.pipeThrough(new TextDecoderStream())) {
    text += chunk;
    if (text.includes("event: rules\n")) break;
  }
  pictureMs = performance.now() - started;
} else {
  await res.body?.cancel();
}
const evicted = lines.filter((l) => l.includes("stalled live stream")).length;
// deno-lint-ignore no-console
console.log(
  `dashboard: ${res.status} after ${answeredMs.toFixed(0)} ms` +
    (pictureMs === null ? "" : `, first picture read after ${pictureMs.toFixed(0)} ms`) +
    `; stalled streams closed: ${evicted}; streams now ${live.clients}`,
);
for (const c of held) {
  try {
    c.close();
  } catch { /* closed by the server */ }
}
await http.close();
Deno.exit(0);
