import assert from "node:assert/strict";
import { SensorEvent } from "../../../src/contract/schemas.ts";
import { brokers, createTopics, readTopic, uniqueNames } from "../../helpers/kafka.ts";

Deno.test("deno task simulate publishes keyed contract events to the broker", async () => {
  const n = uniqueNames("simulate");
  await createTopics([n.events], 3);
  const tasks = JSON.parse(await Deno.readTextFile("deno.json")).tasks;
  const args = (tasks.simulate as string).split(/\s+/).slice(1); // "deno run <permissions> src/simulator/cli.ts"
  const out = await new Deno.Command(Deno.execPath(), {
    args: [...args, "--count", "300", "--rate", "0", "--anomaly", "0.3", "--seed", "11", "--sensors", "20"],
    env: { KAFKA_BROKERS: brokers().join(","), SENSOR_TOPIC: n.events, NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const records = await readTopic(n.events, (v) => v.length >= 300, 30_000);
  assert.equal(records.length, 300);
  const events = records.map((r) => ({ key: r.key, e: SensorEvent.parse(JSON.parse(r.value)) }));
  for (const { key, e } of events) assert.equal(key, `${e.sensor_type}:${e.sensor_id}`);
  assert.equal(new Set(events.map(({ e }) => e.sensor_id)).size, 26, "six default sensors and 20 generated");
  const hot = events.filter(({ e }) => e.sensor_type === "temperature" && (e.value > 35 || e.value < 10));
  assert.ok(hot.length > 0, "anomalies really happen");
});
