/** The two ways to run without a broker: NDJSON replay and the embedded simulator. */
import assert from "node:assert/strict";
import { httpUrl, startService } from "./helpers/service.ts";

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

Deno.test("a replay with KAFKA_BROKERS set runs as a replay, and the dashboard says so", async () => {
  // The broker is never reached: a replay reads its input alone, whatever KAFKA_BROKERS says.
  const service = startService({ KAFKA_BROKERS: "127.0.0.1:1", DLQ_FILE: "/dev/null" }, ["--input", "-"], {
    stdin: "piped",
  });
  try {
    const url = await httpUrl(service);
    // The stream answers 503 until the service is attached, just after "Replaying NDJSON".
    let res = await fetch(`${url}/api/stream`);
    for (let i = 0; i < 100 && res.status === 503; i++) {
      await res.body?.cancel();
      await new Promise((r) => setTimeout(r, 100));
      res = await fetch(`${url}/api/stream`);
    }
    assert.equal(res.status, 200);
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    for (let i = 0; i < 100 && !/event: hello\ndata: .*\n/.test(text); i++) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
    }
    await reader.cancel();
    const hello = /event: hello\ndata: (.*)\n/.exec(text);
    assert.ok(hello !== null, `no hello event in: ${text}`);
    assert.equal(JSON.parse(hello[1]!).mode, "replay");
    await service.child.stdin.close();
    const status = await service.child.status;
    assert.equal(status.code, 0, service.stderr().slice(-2000));
    assert.match(service.stdout(), /events=0 /);
  } finally {
    // A replay of stdin ends at the end of its input, not at a signal.
    await service.child.stdin.close().catch(() => {});
    await service.stop().catch(() => {});
  }
});
