import assert from "node:assert/strict";
import { Pipeline } from "../../src/pipeline.ts";
import { RuleRegistry } from "../../src/rules/registry.ts";
import { createLogger } from "../../src/log.ts";
import { event, MemoryOutput, record } from "../helpers/events.ts";

const quiet = createLogger({ level: "error" });
const topics = { alerts: "alerts", dlq: "dead-letter-queue" };

async function pipeline() {
  const registry = new RuleRegistry("rules");
  const { problems } = await registry.reload();
  assert.deepEqual(problems, []);
  const output = new MemoryOutput();
  return { output, p: new Pipeline({ ruleSet: () => registry.ruleSet, output, topics, logger: quiet }) };
}

Deno.test("the shipped rules alert on the four out-of-range cases of the original design", async () => {
  const { p, output } = await pipeline();
  const cases: [string, string, number, string | null, number | null][] = [
    ["temperature", "temp-001", 9.9, "high", 10],
    ["temperature", "temp-002", 35.1, "high", 35],
    ["temperature", "temp-003", 35, null, null],
    ["temperature", "temp-004", 10, null, null],
    ["humidity", "hum-001", 19, "normal", 20],
    ["humidity", "hum-002", 81, "normal", 80],
    ["humidity", "hum-003", 50, null, null],
    ["co2", "co2-001", 1000.5, "critical", 1000],
    ["co2", "co2-002", 1000, null, null],
    ["pressure", "press-001", 979, "normal", 980],
    ["pressure", "press-002", 1051, "normal", 1050],
    ["pressure", "press-003", 1013, null, null],
    ["light", "light-001", 99999, null, null],
  ];
  for (const [sensor_type, sensor_id, value, priority, threshold] of cases) {
    output.records.length = 0;
    await p.process([record(event({ sensor_type: sensor_type as "co2", sensor_id, value }))]);
    const alerts = output.on("alerts");
    if (priority === null) {
      assert.equal(alerts.length, 0, `${sensor_id}=${value} must not alert`);
    } else {
      assert.equal(alerts.length, 1, `${sensor_id}=${value} must alert once`);
      assert.equal(alerts[0]!.priority, priority);
      assert.equal(alerts[0]!.threshold, threshold);
      assert.equal(alerts[0]!.value, value);
      assert.equal(alerts[0]!.sensor_id, sensor_id);
    }
  }
});

Deno.test("the threshold message says which bound was crossed", async () => {
  const { p, output } = await pipeline();
  await p.process([record(event({ sensor_id: "t-1", value: 37.2 }))]);
  await p.process([record(event({ sensor_id: "t-2", value: 3 }))]);
  const [hot, cold] = output.on("alerts");
  assert.match(String(hot!.message), /value 37\.2 °C exceeds the maximum threshold 35/);
  assert.match(String(cold!.message), /value 3 °C is below the minimum threshold 10/);
});
