/**
 * `/api/alerts` with Kafka: an instance that runs both stages (`--role all`) shows which alert
 * inhibits an alert, its source raised on another partition; an instance that runs only the engine
 * (`--role engine`, the notifier stage elsewhere) cannot know it, and leaves the fields out.
 */
import assert from "node:assert/strict";
import type { SensorEventInput } from "../../../src/contract/schemas.ts";
import { createTopics, produce, topicEnv, uniqueNames, waitFor } from "../../helpers/kafka.ts";
import { httpUrl, type RunningService, startService } from "../../helpers/service.ts";

const RULES = `rules:
  - id: gateway-down
    sensor_type: motion
    sensor_id: "gw-*"
    threshold: { max: 0.5 }
    priority: critical
  - id: sensor-hot
    sensor_type: temperature
    threshold: { max: 40 }
    priority: high
inhibit:
  - source: { rule_id: gateway-down }
    target: { rule_id: sensor-hot }
    equal: [location]
`;

function event(sensor: string, type: SensorEventInput["sensor_type"], value: number, location: string) {
  const e: SensorEventInput = {
    event_id: `${sensor}-${value}`,
    sensor_id: sensor,
    sensor_type: type,
    value,
    unit: "",
    timestamp: new Date().toISOString(),
    location,
    metadata: {},
  };
  return { key: `${type}:${sensor}`, value: JSON.stringify(e) };
}

interface Shown {
  alert_id: string;
  rule_id: string;
  sensor_id: string;
  inhibited_by?: { alert_id: string; rule_id: string; sensor_id: string } | null;
  held_by_storm_guard?: unknown;
}

Deno.test("/api/alerts shows inhibited_by with both stages in the process, and leaves it out with --role engine", async () => {
  const n = uniqueNames("notif-status");
  // The engine-only instance reads the same events into topics and groups of its own.
  const e = uniqueNames("notif-status-engine");
  await createTopics([n.events, n.alerts, n.dlq, n.aggregates, e.alerts, e.dlq, e.aggregates], 3);
  await Deno.mkdir("tests/artifacts", { recursive: true });
  const dir = await Deno.makeTempDir({ dir: "tests/artifacts", prefix: "notif-status-it-" });
  await Deno.writeTextFile(`${dir}/noise.yaml`, RULES);
  const both = startService({ ...topicEnv(n), SENSOR_PARTITIONS: "3", RULES_DIR: dir });
  const engine = startService({ ...topicEnv(e), SENSOR_TOPIC: n.events, RULES_DIR: dir }, [
    "--role",
    "engine",
  ]);
  const running: RunningService[] = [both, engine];
  try {
    const [base, engineBase] = await Promise.all([httpUrl(both, 60_000), httpUrl(engine, 60_000)]);
    await Promise.all([
      both.waitForLine(/Consuming from Kafka/, 60_000),
      engine.waitForLine(/Consuming from Kafka/, 60_000),
    ]);
    await produce(n.events, [
      event("gw-1", "motion", 1, "Hall 7"),
      ...["t7-0", "t7-1", "t7-2"].map((s) => event(s, "temperature", 50, "Hall 7")),
      event("t8-0", "temperature", 50, "Hall 8"),
    ]);
    const active = async (url: string, query = ""): Promise<Shown[]> => {
      const res = await fetch(`${url}/api/alerts${query}`);
      return res.status === 200 ? (await res.json()).active : [];
    };
    const shown = await waitFor("the five alerts with the gateway's inhibiting Hall 7's", async () => {
      const list = await active(base);
      return list.length === 5 && list.filter((a) => a.inhibited_by).length === 3 && list;
    }, 90_000);
    const gateway = shown.find((a) => a.rule_id === "gateway-down")!;
    for (const a of shown.filter((a) => a.sensor_id.startsWith("t7-"))) {
      assert.deepEqual(a.inhibited_by, {
        alert_id: gateway.alert_id,
        rule_id: "gateway-down",
        sensor_id: "gw-1",
      });
    }
    assert.equal(shown.find((a) => a.sensor_id === "t8-0")!.inhibited_by, null);
    assert.equal(gateway.held_by_storm_guard, null);
    assert.deepEqual(
      (await active(base, "?state=inhibited")).map((a) => a.sensor_id).sort(),
      ["t7-0", "t7-1", "t7-2"],
    );

    const engineShown = await waitFor("the engine-only instance's five alerts", async () => {
      const list = await active(engineBase);
      return list.length === 5 && list;
    }, 90_000);
    for (const a of engineShown) {
      assert.ok(!("inhibited_by" in a), `no inhibited_by without the notifier stage: ${JSON.stringify(a)}`);
      assert.ok(!("held_by_storm_guard" in a));
    }
    assert.deepEqual(await active(engineBase, "?state=inhibited"), []);
  } finally {
    const codes = [];
    for (const s of running) codes.push((await s.stop("SIGTERM")).code);
    assert.deepEqual(codes, [0, 0], running.map((s) => s.stderr().slice(-1500)).join("\n---\n"));
  }
});
