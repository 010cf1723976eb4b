/**
 * `GET /api/stream` needs no token: its first picture (every sensor) must cost the server once for
 * the streams that open together, as `/api/sensors` does, not once per stream.
 */
import assert from "node:assert/strict";
import { fakeService, fleetStats } from "../helpers/fake_service.ts";
import { testHttpServer } from "../helpers/http.ts";
import type { Service } from "../../src/service.ts";

/** A service with `sensors` sensors and one rule, that counts how often all its sensors are read. */
function countingService(sensors: number): { service: Service; reads: () => number } {
  const stats = fleetStats(sensors);
  let reads = 0;
  const service = fakeService({
    sensors,
    pipeline: {
      stats: {
        all: () => {
          reads++;
          return stats.all();
        },
        get: (id: string) => stats.get(id),
        get size() {
          return stats.size;
        },
      },
    },
  });
  return { service, reads: () => reads };
}

/** Opens a stream and reads until its first `rules` message (the end of the first picture). */
async function firstPicture(url: string): Promise<{ sensors: number }> {
  const abort = new AbortController();
  const res = await fetch(`${url}/api/stream`, { signal: abort.signal });
  assert.equal(res.status, 200);
  let text = "";
  try {
    for await (const chunk of res.body!.pipeThrough(new TextDecoderStream())) {
      text += chunk;
      if (text.includes("event: rules\n")) break;
    }
  } finally {
    abort.abort();
  }
  let sensors = 0;
  for (const m of text.matchAll(/^event: sensors\ndata: (.*)$/gm)) sensors += JSON.parse(m[1]!).length;
  return { sensors };
}

Deno.test("streams opened together share one first picture of the fleet", async () => {
  const { service, reads } = countingService(5000);
  const http = await testHttpServer({
    mode: "embedded",
    maxStreams: 16,
  });
  http.attach(service);
  try {
    const pictures = await Promise.all(Array.from({ length: 8 }, () => firstPicture(http.url)));
    for (const p of pictures) assert.equal(p.sensors, 5000);
    // 64 streams of 10,000 sensors (the default HTTP_MAX_STREAMS) were 64 views and encodings of the
    // fleet: 9.5 s of the main thread and RSS +330 MB while the clients did not read.
    assert.equal(reads(), 1, `the fleet was read ${reads()} times for 8 streams`);
  } finally {
    await http.close();
  }
});
