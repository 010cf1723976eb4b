/**
 * `POST /api/whatif` on the running service (the embedded simulator, no broker): one rule's YAML text
 * run over the events the service holds, with the API's write guard, and nothing of it in force.
 */
import assert from "node:assert/strict";
import type { SensorAlert } from "../../src/contract/schemas.ts";
import { waitFor } from "../helpers/kafka.ts";
import { httpUrl, startService } from "../helpers/service.ts";

const TOKEN = "tok-whatif-3b9d0c2e7a";

/** The live rule's condition under another id: a what-if of it must find what the service found. */
const SAME_AS_LIVE = `id: what-if-temperature
sensor_type: temperature
threshold: { min: 10, max: 35 }
priority: high
message: "{{sensor_id}} at {{value}}"
`;

interface WhatIf {
  history: { events: number; capped: boolean; max_events: number };
  report: {
    rules: { rule_id: string; episodes: number; alerts: { firing: number; resolved: number } }[];
    episodes: { rule_id: string; group: string; start: string; end: string | null }[];
  };
}

Deno.test("POST /api/whatif runs one rule over the service's recent events and finds the episodes the service did", async (t) => {
  await Deno.mkdir("tests/artifacts", { recursive: true });
  // Every event out of range: the temperature sensors' episodes open at their first event and stay open.
  const service = startService({ KAFKA_BROKERS: "", API_TOKEN: TOKEN }, [
    "--rate",
    "30",
    "--anomaly",
    "1",
    "--seed",
    "11",
  ]);
  try {
    const base = await httpUrl(service);
    const post = async (body: unknown, headers: Record<string, string> = {}) => {
      const res = await fetch(`${base}/api/whatif`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${TOKEN}`, ...headers },
        body: typeof body === "string" ? body : JSON.stringify(body),
      });
      return { status: res.status, body: await res.json() };
    };
    const live = await waitFor("both temperature sensors alerting", async () => {
      const body = await (await fetch(`${base}/api/alerts`)).json();
      const temps = ((body.active ?? []) as SensorAlert[]).filter((a) =>
        a.rule_id === "temperature-out-of-range"
      );
      return temps.length === 2 && temps;
    });

    await t.step("the same condition finds the live episodes, fired at the same event time", async () => {
      const { status, body } = await post({ rule: SAME_AS_LIVE });
      assert.equal(status, 200, JSON.stringify(body));
      const r = body as WhatIf;
      assert.ok(r.history.events > 0);
      assert.equal(r.history.capped, false);
      assert.deepEqual(
        r.report.episodes.map((e) => `${e.rule_id} ${e.group} ${e.start} ${e.end}`).sort(),
        live.map((a) => `what-if-temperature ${a.sensor_id} ${a.fired_at} null`).sort(),
      );
      assert.equal(r.report.rules[0]!.alerts.resolved, 0);
    });

    await t.step("a rule that never holds finds nothing, and neither is put in force", async () => {
      const { status, body } = await post({
        rule: SAME_AS_LIVE.replace("min: 10, max: 35", "min: -1e9, max: 1e9"),
      });
      assert.equal(status, 200);
      assert.equal((body as WhatIf).report.episodes.length, 0);
      const rules = await (await fetch(`${base}/api/rules`)).json();
      assert.ok(!JSON.stringify(rules).includes("what-if-temperature"));
    });

    await t.step(
      "a rule file of one rule is taken too; two rules or a bad one are refused with the line",
      async () => {
        const file = `rules:\n  - ${SAME_AS_LIVE.trimEnd().split("\n").join("\n    ")}\n`;
        assert.equal((await post({ rule: file })).status, 200);
        const two = await post({
          rule: `${file}  - id: other\n    sensor_type: co2\n    threshold: { max: 1 }\n    priority: low\n`,
        });
        assert.equal(two.status, 400);
        assert.match(two.body.error, /exactly one rule, got 2/);
        const bad = await post({ rule: SAME_AS_LIVE.replace("priority: high", "priority: urgent") });
        assert.equal(bad.status, 400);
        assert.match(bad.body.error, /^what-if\.yaml:4:\d+ what-if-temperature: .*priority/);
        assert.equal((await post({ rule: "" })).status, 400);
        assert.equal((await post("not json")).status, 400);
      },
    );

    await t.step("guarded like the API's writes: token, JSON, same origin, POST", async () => {
      assert.equal((await post({ rule: SAME_AS_LIVE }, { authorization: "" })).status, 401);
      assert.equal(
        (await post({ rule: SAME_AS_LIVE }, { authorization: "Bearer wrong-token-123456" })).status,
        401,
      );
      assert.equal((await post({ rule: SAME_AS_LIVE }, { "content-type": "text/plain" })).status, 415);
      assert.equal((await post({ rule: SAME_AS_LIVE }, { origin: "http://evil.example" })).status, 403);
      const get = await fetch(`${base}/api/whatif`);
      await get.body?.cancel();
      assert.equal(get.status, 405);
    });
  } finally {
    await service.stop();
  }
});
