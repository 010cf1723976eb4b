/**
 * Window and deadman rules end to end through the real broker, with event times spread over minutes
 * (the engine judges by event time, so the test needs no waiting).
 */
import assert from "node:assert/strict";
import { AggregatedSensorEvent, SensorAlert } from "../../src/contract/schemas.ts";
import { createTopics, produce, readTopic, topicEnv, uniqueNames } from "../helpers/kafka.ts";
import { scrape } from "../helpers/metrics.ts";
import { httpUrl, startService } from "../helpers/service.ts";

Deno.test("a 5-minute window publishes the expected aggregate and a silent sensor raises a deadman alert", async () => {
  const n = uniqueNames("windows");
  await createTopics([n.events, n.alerts, n.dlq, n.aggregates], 1);
  const dir = await Deno.makeTempDir({ dir: ".", prefix: ".test-rules-" });
  await Deno.writeTextFile(
    `${dir}/rules.yaml`,
    `rules:
  - id: co2-5m
    sensor_type: co2
    window: { type: tumbling, size: 5m }
    threshold: { max: 800 }
    publish: true
    priority: high
  - id: silent
    sensor_type: temperature
    absent_for: 2m
    priority: normal
`,
  );
  const t0 = Date.UTC(2026, 10, 25, 10, 0, 0);
  const events = [];
  for (let s = 0; s <= 360; s += 2) {
    events.push({ sensor_id: "co2-w", sensor_type: "co2", value: s < 300 ? 850 + (s % 20) : 400, t: s });
    if (s === 0) events.push({ sensor_id: "temp-quiet", sensor_type: "temperature", value: 21, t: s });
  }
  await produce(
    n.events,
    events.map((e, i) => ({
      key: `${e.sensor_type}:${e.sensor_id}`,
      value: JSON.stringify({
        event_id: `w-${i}`,
        sensor_id: e.sensor_id,
        sensor_type: e.sensor_type,
        value: e.value,
        unit: e.sensor_type === "co2" ? "ppm" : "°C",
        timestamp: new Date(t0 + e.t * 1000).toISOString(),
      }),
    })),
  );
  const service = startService({
    ...topicEnv(n),
    RULES_DIR: dir,
  });
  try {
    const [agg] = await readTopic(n.aggregates, (v) => v.length >= 1, 60_000);
    const a = AggregatedSensorEvent.parse(JSON.parse(agg!.value));
    assert.equal(agg!.key, "co2:co2-w");
    assert.equal(a.count, 150);
    assert.equal(a.window_start, new Date(t0).toISOString());
    assert.equal(a.window_end, new Date(t0 + 300_000).toISOString());
    assert.equal(a.min_value, 850);
    assert.equal(a.max_value, 868);
    assert.equal(a.avg_value, 859);
    assert.equal(a.unit, "ppm");

    const alerts = (await readTopic(n.alerts, (v) => v.length >= 2, 30_000)).map((r) =>
      SensorAlert.parse(JSON.parse(r.value))
    );
    const byRule = Object.fromEntries(alerts.map((x) => [x.rule_id, x]));
    assert.equal(byRule["co2-5m"]?.value, 859);
    assert.equal(byRule["co2-5m"]?.threshold, 800);
    assert.equal(byRule["silent"]?.sensor_id, "temp-quiet");
    assert.equal(byRule["silent"]?.state, "firing");
    // Judged by event time: the first engine tick after the stream reached 2 minutes of silence.
    assert.ok(Date.parse(byRule["silent"]!.timestamp) >= t0 + 120_000);
    // Every event arrived in order: one window published, none late.
    const m = await scrape(await httpUrl(service));
    assert.ok(m.value("sensor_aggregates_total")! >= 1);
    assert.equal(m.value("sensor_events_late_total"), 0);
  } finally {
    const status = await service.stop();
    await Deno.remove(dir, { recursive: true });
    assert.equal(status.code, 0, service.stderr().slice(-2000));
  }
});
