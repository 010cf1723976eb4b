/**
 * `/api/alerts` of the embedded service (the notifier stage in the same process) says per alert why
 * it is not notified: `inhibited_by` names the firing source alert of an inhibit rule, and
 * `held_by_storm_guard` the rule whose `max_notifications` held its notification back; `?state=inhibited`
 * and `?state=held` filter on them.
 */
import assert from "node:assert/strict";
import { waitFor } from "../helpers/kafka.ts";
import { httpUrl, startService } from "../helpers/service.ts";

const RULES = `rules:
  - id: temperature-critical
    sensor_type: temperature
    sensor_id: temp-001
    threshold: { min: 10, max: 35 }
    priority: critical
  - id: temperature-high
    sensor_type: temperature
    threshold: { min: 10, max: 35 }
    priority: high
  - id: temperature-storm
    sensor_type: temperature
    threshold: { min: 10, max: 35 }
    priority: normal
    max_notifications: { count: 1, per: 1h }
inhibit:
  - source: { rule_id: temperature-critical }
    target: { rule_id: temperature-high }
    equal: [sensor_id]
`;

interface ShownAlert {
  alert_id: string;
  rule_id: string;
  sensor_id: string;
  inhibited_by?: { alert_id: string; rule_id: string; sensor_id: string } | null;
  held_by_storm_guard?: { rule_id: string; held_at: string; summarized: boolean } | null;
}

Deno.test("/api/alerts shows which alert inhibits an alert and which the storm guard holds back", async (t) => {
  await Deno.mkdir("tests/artifacts", { recursive: true });
  const dir = await Deno.makeTempDir({ dir: "tests/artifacts", prefix: "notification-status-" });
  await Deno.writeTextFile(`${dir}/rules.yaml`, RULES);
  // Every event out of range: the alerts stay open.
  const service = startService(
    { KAFKA_BROKERS: "", RULES_DIR: dir, SILENCES_FILE: `${dir}/silences.json` },
    ["--rate", "20", "--anomaly", "1", "--seed", "5"],
  );
  try {
    const base = await httpUrl(service);
    const alerts = async (query = ""): Promise<ShownAlert[]> => {
      const res = await fetch(`${base}/api/alerts${query}`);
      assert.equal(res.status, 200);
      return (await res.json()).active;
    };
    await waitFor("the service to answer", async () => (await fetch(`${base}/api/alerts`)).status === 200);
    const all = await waitFor("the alerts of both temperature sensors under the three rules", async () => {
      const active = await alerts();
      const held = active.filter((a) => a.held_by_storm_guard);
      return active.filter((a) => a.sensor_id.startsWith("temp-")).length === 5 && held.length === 1 &&
        active;
    });
    const find = (rule: string, sensor: string) =>
      all.find((a) => a.rule_id === rule && a.sensor_id === sensor)!;

    await t.step("the target of an inhibit rule names its firing source; other alerts say null", () => {
      const source = find("temperature-critical", "temp-001");
      assert.deepEqual(find("temperature-high", "temp-001").inhibited_by, {
        alert_id: source.alert_id,
        rule_id: "temperature-critical",
        sensor_id: "temp-001",
      });
      assert.equal(find("temperature-high", "temp-002").inhibited_by, null, "no source for temp-002");
      assert.equal(source.inhibited_by, null);
    });

    await t.step("one alert of the capped rule is notified, the other held back by its storm guard", () => {
      const storm = all.filter((a) => a.rule_id === "temperature-storm");
      assert.equal(storm.length, 2);
      const held = storm.filter((a) => a.held_by_storm_guard !== null);
      assert.equal(held.length, 1, JSON.stringify(storm));
      assert.equal(held[0]!.held_by_storm_guard!.rule_id, "temperature-storm");
      assert.equal(held[0]!.held_by_storm_guard!.summarized, false, "the interval of 1h has not ended");
      assert.ok(!Number.isNaN(Date.parse(held[0]!.held_by_storm_guard!.held_at)));
      for (const a of all.filter((a) => a.rule_id !== "temperature-storm")) {
        assert.equal(a.held_by_storm_guard, null, a.alert_id);
      }
    });

    await t.step("?state=inhibited and ?state=held list only those", async () => {
      const inhibited = await alerts("?state=inhibited");
      assert.deepEqual(inhibited.map((a) => `${a.rule_id} ${a.sensor_id}`), ["temperature-high temp-001"]);
      const held = await alerts("?state=held");
      assert.deepEqual(held.map((a) => a.rule_id), ["temperature-storm"]);
      const bad = await fetch(`${base}/api/alerts?state=quiet`);
      assert.equal(bad.status, 400);
      assert.match((await bad.json()).error, /inhibited, held, got "quiet"/);
    });
  } finally {
    assert.equal((await service.stop()).code, 0, service.stderr().slice(-2000));
  }
});
