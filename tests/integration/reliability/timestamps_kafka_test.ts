/**
 * Out-of-order, late and future timestamps through the service on the real broker: the same stream as
 * the Pipeline test, as an operator would see it (aggregates topic, DLQ topic, /api/sensors).
 */
import assert from "node:assert/strict";
import { AggregatedSensorEvent, DlqRecord } from "../../../src/contract/schemas.ts";
import { createTopics, produce, readTopic, topicEnv, uniqueNames, waitFor } from "../../helpers/kafka.ts";
import { httpUrl, startService } from "../../helpers/service.ts";
import { FIRST_WINDOW, scenario, STATS, WINDOW_RULES } from "../../reliability/timestamp_scenario.ts";

Deno.test("the service keeps out-of-order events out of 'last', windows late ones per allowed_lateness and dead-letters future ones", async () => {
  const n = uniqueNames("timestamps");
  await createTopics([n.events, n.alerts, n.dlq, n.aggregates], 3);
  await Deno.mkdir("tests/artifacts", { recursive: true });
  const dir = await Deno.makeTempDir({ dir: "tests/artifacts", prefix: "timestamps-" });
  await Deno.writeTextFile(`${dir}/window.yaml`, WINDOW_RULES);
  const { t0, events } = scenario(n.events);
  // One key, so one partition: the broker keeps the order the scenario needs.
  await produce(
    n.events,
    events.map((e) => ({ key: `${e.sensor_type}:${e.sensor_id}`, value: JSON.stringify(e) })),
  );
  const service = startService({
    ...topicEnv(n),
    RULES_DIR: dir,
    MAX_FUTURE_SKEW: "5m",
  });
  try {
    const base = await httpUrl(service);
    const [dlq] = await readTopic(n.dlq, (v) => v.length >= 1, 60_000);
    const record = DlqRecord.parse(JSON.parse(dlq!.value));
    assert.equal(record.stage, "validate");
    assert.match(
      record.error,
      /^Field "timestamp": ".+" is \d+ s ahead of the wall clock \(at most 300 s allowed\)$/,
    );
    assert.equal(JSON.parse(record.original_value!).value, 999);

    const [agg] = await readTopic(n.aggregates, (v) => v.length >= 1, 60_000);
    const a = AggregatedSensorEvent.parse(JSON.parse(agg!.value));
    assert.equal(a.window_start, new Date(t0).toISOString());
    assert.deepEqual({ count: a.count, min: a.min_value, max: a.max_value, avg: a.avg_value }, FIRST_WINDOW);

    // Engine workers answer the API once all of them started (503 "Service is starting" before).
    await waitFor("/readyz to answer 200", async () => {
      const res = await fetch(`${base}/readyz`);
      await res.body?.cancel();
      return res.status === 200;
    }, 60_000);
    const sensor = await (async () => {
      for (let i = 0; i < 100; i++) {
        const body = await (await fetch(`${base}/api/sensors`)).json();
        const s = body.sensors.find((x: { sensor_id: string }) => x.sensor_id === "co2-ts");
        if (s?.count === STATS.count) return s;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error("co2-ts never reached its final count in /api/sensors");
    })();
    assert.deepEqual(
      { count: sensor.count, min: sensor.min, max: sensor.max, last_value: sensor.last_value },
      STATS,
    );
  } finally {
    const status = await service.stop();
    await Deno.remove(dir, { recursive: true });
    assert.equal(status.code, 0, service.stderr().slice(-2000));
  }
});
