/**
 * With engine workers every read of `/api/*` asks each worker for a snapshot (`Service.refresh`), and
 * one with sensors makes each worker list its whole fleet (84 ms at 100,000 sensors, its thread's time
 * taken from the events). Reads need no token: a path that is no route must not cost the workers
 * anything, and only the answers that show sensors may ask for them.
 */
import assert from "node:assert/strict";
import { fakeService } from "../helpers/fake_service.ts";
import { testHttpServer } from "../helpers/http.ts";
import type { RefreshWant } from "../../src/engine/types.ts";

Deno.test("reads ask the engine workers only for what they answer with", async () => {
  const wants: (string | boolean)[] = [];
  const service = fakeService({
    over: {
      refresh: (want?: RefreshWant) => {
        wants.push(want?.sensors ?? true);
        return Promise.resolve();
      },
    },
  });
  const http = await testHttpServer({
    mode: "kafka",
  });
  http.attach(service);
  try {
    const get = async (path: string) => {
      wants.length = 0;
      const res = await fetch(`${http.url}${path}`);
      await res.body?.cancel();
      return { status: res.status, wants: [...wants] };
    };
    assert.deepEqual(await get("/no-such-route"), { status: 404, wants: [] });
    assert.deepEqual(await get("/api/nothing"), { status: 404, wants: [] });
    assert.deepEqual(await get("/api/rules"), { status: 200, wants: [false] });
    assert.deepEqual(await get("/api/alerts"), { status: 200, wants: [false] });
    assert.deepEqual(await get("/api/sensors"), { status: 200, wants: [true] });
  } finally {
    await http.close();
  }
});
