/**
 * The HTTP API of the embedded default (no broker): auth on writes, filters, rule errors with
 * file:line, the live stream, and an acknowledgement through the in-process alerts queue.
 */
import assert from "node:assert/strict";
import type { SensorAlert } from "../../src/contract/schemas.ts";
import { waitFor } from "../helpers/kafka.ts";
import { scrape } from "../helpers/metrics.ts";
import { httpUrl, startService } from "../helpers/service.ts";

const GOOD = `rules:
  - id: temperature-out-of-range
    sensor_type: temperature
    threshold: { min: 10, max: 35 }
    priority: high
  - id: humidity-out-of-range
    sensor_type: humidity
    threshold: { min: 20, max: 80 }
    priority: normal
`;
const BROKEN = `rules:
  - id: broken-rule
    sensor_type: temperature
    threshold: { max: 10 }
    priority: urgent
`;
const TOKEN = "tok-7f3a9c1e5b8d2a04";

/** Reads SSE messages until `until` holds for one of them; bounded by `timeoutMs`. */
async function readStream(
  url: string,
  until: (event: string, data: unknown) => boolean,
  timeoutMs = 20_000,
): Promise<{ event: string; data: unknown }[]> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  const seen: { event: string; data: unknown }[] = [];
  try {
    const res = await fetch(url, { signal: abort.signal });
    assert.equal(res.headers.get("content-type"), "text/event-stream; charset=utf-8");
    let buffer = "";
    for await (const chunk of res.body!.pipeThrough(new TextDecoderStream())) {
      buffer += chunk;
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const event = /^event: (.*)$/m.exec(block)?.[1] ?? "message";
        const data = JSON.parse(/^data: (.*)$/m.exec(block)?.[1] ?? "null");
        seen.push({ event, data });
        if (until(event, data)) return seen;
      }
    }
  } catch (err) {
    if (!abort.signal.aborted) throw err;
  } finally {
    clearTimeout(timer);
    abort.abort();
  }
  throw new Error(`Stream ended without the expected message; saw ${seen.map((s) => s.event).join(", ")}`);
}

Deno.test("HTTP API of the embedded simulator", async (t) => {
  await Deno.mkdir("tests/artifacts", { recursive: true });
  const rulesDir = await Deno.makeTempDir({ dir: "tests/artifacts", prefix: "rules-" });
  await Deno.writeTextFile(`${rulesDir}/good.yaml`, GOOD);
  await Deno.writeTextFile(`${rulesDir}/broken.yaml`, BROKEN);
  // No broker even when the test run has one (KAFKA_BROKERS is inherited). Every event out of
  // range: episodes stay open, so there is always an alert to acknowledge.
  const service = startService({ KAFKA_BROKERS: "", API_TOKEN: TOKEN, RULES_DIR: rulesDir }, [
    "--rate",
    "30",
    "--anomaly",
    "1",
    "--seed",
    "7",
  ]);
  try {
    const base = await httpUrl(service);
    const get = async (path: string) => {
      const res = await fetch(`${base}${path}`);
      return { status: res.status, body: await res.json() };
    };
    const open = await waitFor("three open alerts", async () => {
      const { body } = await get("/api/alerts");
      return body.active?.length === 3 && body.active as SensorAlert[];
    });

    await t.step("/healthz and /readyz answer 200 without a broker", async () => {
      assert.equal((await get("/healthz")).status, 200);
      const ready = await get("/readyz");
      assert.equal(ready.status, 200);
      assert.deepEqual(ready.body.checks, { rules: { loaded: true, rules: 2 } });
    });

    await t.step("/api/alerts filters by priority and state and refuses unknown values", async () => {
      assert.deepEqual(
        open.map((a) => `${a.priority} ${a.sensor_id}`).sort(),
        ["high temp-001", "high temp-002", "normal hum-001"],
      );
      const high = (await get("/api/alerts?priority=high")).body;
      assert.deepEqual(high.active.map((a: SensorAlert) => a.sensor_id).sort(), ["temp-001", "temp-002"]);
      assert.ok(high.recent.every((a: SensorAlert) => a.priority === "high"));
      assert.deepEqual((await get("/api/alerts?state=resolved")).body, { active: [], recent: [] });
      const bad = await get("/api/alerts?priority=urgent");
      assert.equal(bad.status, 400);
      assert.match(bad.body.error, /"priority" must be one of low, normal, high, critical, got "urgent"/);
    });

    await t.step("/api/rules lists the rules in effect and each problem with file:line", async () => {
      const { body } = await get("/api/rules");
      assert.equal(body.loaded, 2);
      assert.equal(body.ok, false);
      assert.ok(body.errors.length >= 1);
      for (const e of body.errors) {
        assert.match(e.location, new RegExp(`^${rulesDir}/broken\\.yaml:\\d+:\\d+$`));
        assert.equal(e.rule_id, "broken-rule");
      }
      assert.ok(
        body.errors.some((e: { message: string }) => /priority/i.test(e.message)),
        JSON.stringify(body.errors),
      );
      const m = await scrape(base);
      assert.equal(m.value("sensor_rules_loaded"), 2);
      assert.equal(m.value("sensor_rule_problems"), body.errors.length);
      assert.ok(m.value("sensor_rule_reload_errors_total")! >= 1);
    });

    await t.step("/api/sensors gives stats, recent values and the threshold band", async () => {
      const body = await waitFor("all six simulated sensors", async () => {
        const { body } = await get("/api/sensors");
        return body.sensors.length === 6 && body;
      });
      const temp = body.sensors.find((s: { sensor_id: string }) => s.sensor_id === "temp-001");
      assert.deepEqual(temp.threshold, { min: 10, max: 35, rule: "temperature-out-of-range" });
      assert.equal(temp.state, "high");
      assert.ok(temp.recent.length >= 1 && temp.recent.length === Math.min(temp.count, 60));
      assert.equal(temp.last_value, temp.recent.at(-1));
      const light = body.sensors.find((s: { sensor_id: string }) => s.sensor_id === "light-001");
      assert.equal(light.threshold, null);
      assert.equal(light.state, "ok");
    });

    await t.step("acknowledging needs the bearer token and a same-origin request", async () => {
      const target = open.find((a) => a.sensor_id === "temp-001")!;
      const ack = (headers: Record<string, string>) =>
        fetch(`${base}/api/alerts/${target.alert_id}/ack`, {
          method: "POST",
          headers: { "content-type": "application/json", ...headers },
        }).then(async (r) => ({
          status: r.status,
          body: await r.json(),
        }));
      assert.equal((await ack({})).status, 401);
      assert.equal((await ack({ authorization: "Bearer wrong" })).status, 401);
      assert.equal(
        (await ack({ authorization: `Bearer ${TOKEN}`, origin: "http://evil.example" })).status,
        403,
      );
      assert.equal((await fetch(`${base}/api/alerts/${target.alert_id}/ack`)).status, 405);
      const ok = await ack({ authorization: `Bearer ${TOKEN}` });
      assert.equal(ok.status, 200);
      assert.equal(ok.body.alert.acknowledged, true);
      assert.equal(ok.body.alert.ack_update, true);
      const acked = (await get("/api/alerts?state=acknowledged")).body;
      assert.deepEqual(acked.active.map((a: SensorAlert) => a.alert_id), [target.alert_id]);
      const m = await scrape(base);
      assert.equal(
        m.value("sensor_alerts_active", { rule: "temperature-out-of-range", acknowledged: "true" }),
        1,
      );
    });

    await t.step("/api/stream sends a snapshot, then sensor updates and acknowledgements", async () => {
      const target = open.find((a) => a.sensor_id === "hum-001")!;
      let acked = false;
      const messages = await readStream(`${base}/api/stream`, (event, data) => {
        if (event === "sensors" && !acked) {
          acked = true;
          fetch(`${base}/api/alerts/${target.alert_id}/ack`, {
            method: "POST",
            headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
          }).then((r) => r.body?.cancel());
        }
        return event === "alerts" &&
          (data as { alerts: SensorAlert[] }).alerts.some((a) =>
            a.alert_id === target.alert_id && a.acknowledged
          );
      });
      const events = messages.map((m) => m.event);
      assert.deepEqual(events.slice(0, 5), ["hello", "stats", "sensors", "alerts", "rules"]);
      assert.ok(events.slice(5).includes("stats"), "periodic stats");
      const stats = messages.find((m) => m.event === "stats")!.data as { mode: string; events: number };
      assert.equal(stats.mode, "embedded");
    });

    await t.step("the token never reaches a log line", () => {
      assert.ok(!service.stderr().includes(TOKEN));
      assert.ok(!service.stdout().includes(TOKEN));
    });
  } finally {
    const status = await service.stop();
    assert.equal(status.code, 0, service.stderr().slice(-2000));
    await Deno.remove(rulesDir, { recursive: true });
  }
});

Deno.test("the service refuses to serve beyond loopback without a token", async () => {
  const service = startService({ KAFKA_BROKERS: "", HTTP_HOST: "0.0.0.0" });
  const status = await service.child.status;
  await service.stop();
  assert.equal(status.code, 2);
  assert.match(service.stdout(), /HTTP_HOST "0\.0\.0\.0" is reachable from other machines: set API_TOKEN/);
});
