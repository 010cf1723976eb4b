/**
 * `GET /api/alerts` at `--alerts` open alerts, in process (the real `startHttpServer`, a tracker kept
 * in memory, real silences over a temporary file, no engine, no Kafka): the main thread's time per
 * answer (the client in a worker; blocked turns of the event loop summed by a 1 ms probe timer), asked
 * one after another and `--concurrent` at once, and the answer's size.
 *
 *   deno run --allow-net=127.0.0.1 --allow-read --allow-write --allow-env scripts/bench/alerts_share.ts [--alerts 10000] [--requests 40] [--concurrent 10]
 *
 * @module
 */
import { parseArgs } from "node:util";
import type { SensorAlert } from "../../src/contract/schemas.ts";
import type { OpenEpisode } from "../../src/engine/types.ts";
import { LiveFeed } from "../../src/http/live.ts";
import { startHttpServer } from "../../src/http/server.ts";
import { createLogger } from "../../src/log.ts";
import { FileSilenceLog } from "../../src/notifiers/silences/file.ts";
import { Silences } from "../../src/notifiers/silences/store.ts";
import { fakeService } from "../../tests/helpers/fake_service.ts";

const { values } = parseArgs({
  options: {
    alerts: { type: "string", default: "10000" },
    requests: { type: "string", default: "40" },
    concurrent: { type: "string", default: "10" },
  },
});
const count = Number(values.alerts);
const requests = Number(values.requests);
const concurrent = Number(values.concurrent);
const logger = createLogger({ level: "error" });

const priorities = ["low", "normal", "high", "critical"] as const;
const episodes: OpenEpisode[] = [];
for (let i = 0; i < count; i++) {
  const id = `alert-${i}`;
  const alert = {
    alert_id: id,
    rule_id: `rule-${i % 50}`,
    sensor_id: `temp-${String(i).padStart(5, "0")}`,
    sensor_type: "temperature",
    priority: priorities[i % 4],
    state: "firing",
    message: `Temperature at temp-${i}: value 41.2 °C exceeds the maximum threshold 35`,
    value: 41.2,
    threshold: 35,
    timestamp: new Date(Date.UTC(2026, 0, 1) + i * 1000).toISOString(),
    acknowledged: false,
    location: `hall-${i % 20}`,
    unit: "°C",
    labels: { team: "facilities" },
    description: "Temperature above range",
    event: {
      event_id: `ev-${i}`,
      sensor_id: `temp-${i}`,
      sensor_type: "temperature",
      value: 41.2,
      unit: "°C",
    },
  } as unknown as SensorAlert;
  episodes.push({ alert_id: id, rule_id: alert.rule_id, acknowledged: false, alert });
}
const dir = await Deno.makeTempDir({ prefix: "alerts-share-bench-" });
const silences = new Silences({ log: new FileSilenceLog(`${dir}/silences.json`), logger });
await silences.start();
for (let i = 0; i < 10; i++) {
  await silences.create({
    matchers: [{
      name: "sensor_id",
      value: `temp-${String(i * 7).padStart(5, "0")}`,
      is_regex: false,
      is_equal: true,
    }],
    ends_at: new Date(Date.now() + 3600_000).toISOString(),
    created_by: "bench",
    comment: "bench",
  });
}
const live = new LiveFeed();
const service = fakeService({
  pipeline: { tracker: { active: () => episodes, flapping: () => [], size: count } },
  over: { silences },
});
const http = await startHttpServer({
  host: "127.0.0.1",
  port: 0,
  token: null,
  logger,
  live,
  alertsTopic: "alerts",
  mode: "embedded",
});
http.attach(service);

// The client runs in a worker, so that the main thread's time is the server's alone.
const client = `self.onmessage = async ({ data: { url, requests, concurrent } }) => {
  let bytes = 0;
  const ask = async () => { bytes = (await (await fetch(url)).arrayBuffer()).byteLength; };
  await ask();
  let t = performance.now();
  for (let i = 0; i < requests; i++) await ask();
  const sequential = (performance.now() - t) / requests;
  t = performance.now();
  for (let i = 0; i < requests / concurrent; i++) await Promise.all(Array.from({ length: concurrent }, ask));
  self.postMessage({ bytes, sequential, together: (performance.now() - t) / requests });
};`;
const worker = new Worker(URL.createObjectURL(new Blob([client], { type: "text/javascript" })), {
  type: "module",
});
// Main-thread time: how long each turn of the event loop ran, summed (a probe timer every 1 ms sees the gaps).
const busy = { ms: 0, last: performance.now(), stop: false };
const probe = () => {
  const now = performance.now();
  const gap = now - busy.last;
  if (gap > 2) busy.ms += gap - 1;
  busy.last = now;
  if (!busy.stop) setTimeout(probe, 1);
};
probe();
const result = await new Promise<{ bytes: number; sequential: number; together: number }>((resolve) => {
  worker.onmessage = (e) => resolve(e.data);
  worker.postMessage({ url: `${http.url}/api/alerts`, requests, concurrent });
});
busy.stop = true;
worker.terminate();
const perRequest = busy.ms / (2 * requests + 1);
// deno-lint-ignore no-console
console.log(
  `${count} open alerts, answer ${(result.bytes / 1e6).toFixed(1)} MB: main thread ~${
    perRequest.toFixed(1)
  } ms ` +
    `per request; ${result.sequential.toFixed(1)} ms per request one after another, ` +
    `${result.together.toFixed(1)} ms per request ${concurrent} at once (${requests} requests each)`,
);
await http.close();
await silences.close();
await Deno.remove(dir, { recursive: true });
