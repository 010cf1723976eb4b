/** The two ways to run without a broker: NDJSON replay and the embedded simulator. */
import assert from "node:assert/strict";
import { startService } from "./helpers/service.ts";

Deno.test("a replay of good, out-of-range and garbage lines prints the alerts, dead-letters the garbage and exits 0", async () => {
  const dir = await Deno.makeTempDir({ dir: ".", prefix: ".test-replay-" });
  const ev = (i: number, sensor_id: string, sensor_type: string, value: number) =>
    JSON.stringify({
      event_id: `replay-${i}`,
      sensor_id,
      sensor_type,
      value,
      unit: "x",
      timestamp: `2026-11-25T21:00:0${i}.123456`,
    });
  const lines = [
    ev(1, "temp-001", "temperature", 22),
    ev(2, "temp-001", "temperature", 41.5),
    "this is not json",
    ev(3, "co2-001", "co2", 1500),
    JSON.stringify({ event_id: "bad", sensor_id: "x", sensor_type: "temperature", value: "hot" }),
    ev(4, "temp-001", "temperature", 21),
    ev(2, "temp-001", "temperature", 41.5), // a redelivery: no second alert
  ];
  await Deno.writeTextFile(`${dir}/input.ndjson`, lines.join("\n") + "\n");
  const service = startService({
    KAFKA_BROKERS: "",
    DLQ_FILE: `${dir}/dlq.ndjson`,
    AGGREGATES_FILE: `${dir}/agg.ndjson`,
  }, [
    "--input",
    `${dir}/input.ndjson`,
    "--http-port",
    "0",
  ]);
  try {
    const status = await service.child.status;
    assert.equal(status.code, 0, service.stderr().slice(-2000));
    const out = service.stdout();
    const alerts = out.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
    assert.deepEqual(alerts.map((a) => `${a.rule_id} ${a.state} ${a.value}`), [
      "temperature-out-of-range firing 41.5",
      "co2-critical firing 1500",
      "temperature-out-of-range resolved 21",
      // The end of the input closes the last 5-minute CO2 window (one reading of 1500).
      "co2-average-high firing 1500",
    ]);
    assert.match(out, /temp-001\s+temperature\s+3\s+28\.17/, "stats count each event once");
    assert.match(out, /dead_lettered=2/);
    const dlq = (await Deno.readTextFile(`${dir}/dlq.ndjson`)).trim().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(dlq.map((d) => [d.original_offset, d.stage]), [["3", "decode"], ["5", "validate"]]);
    assert.match(dlq[0].error, /not valid JSON/);
    assert.match(dlq[1].error, /Field "value"/);
  } finally {
    await service.stop().catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the embedded default shows events and alerts, and prints stats on SIGINT", async () => {
  const dir = await Deno.makeTempDir({ dir: ".", prefix: ".test-embedded-" });
  const service = startService({ KAFKA_BROKERS: "", DLQ_FILE: `${dir}/dlq.ndjson` }, [
    "--anomaly",
    "0.5",
    "--rate",
    "20",
    "--http-port",
    "0",
  ]);
  try {
    await service.waitForLine(/"msg":"Event temp-001/, 10_000);
    await service.waitForLine(/"state":"firing"/, 10_000);
    const status = await service.stop("SIGINT");
    assert.equal(status.code, 0);
    assert.match(service.stdout(), /temp-001\s+temperature\s+\d+/);
    assert.match(service.stdout(), /KAFKA_BROKERS=/, "the hint on how to point it at Kafka");
  } finally {
    await service.stop().catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
});
