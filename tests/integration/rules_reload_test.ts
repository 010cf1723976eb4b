/**
 * Hot reload against a running service and the real broker: editing a rule file changes alerts
 * while events keep flowing; a broken file keeps the last good rules and is reported with file:line.
 */
import assert from "node:assert/strict";
import { SensorAlert } from "../../src/contract/schemas.ts";
import { print } from "../../src/log.ts";
import {
  createTopics,
  groupLag,
  kafka,
  readTopic,
  topicEnv,
  uniqueNames,
  waitFor,
} from "../helpers/kafka.ts";
import { startService } from "../helpers/service.ts";
import { Partitioners } from "kafkajs";

const rule = (max: number) =>
  `rules:
  - id: reload-hot
    sensor_type: temperature
    threshold: { max: ${max} }
    priority: high
`;

Deno.test("editing a rule file of a running service changes its alerts; a broken file keeps the old rules", async () => {
  const n = uniqueNames("reload");
  await createTopics([n.events, n.alerts, n.dlq, n.aggregates], 1);
  const dir = await Deno.makeTempDir({ dir: ".", prefix: ".test-rules-" });
  await Deno.writeTextFile(`${dir}/hot.yaml`, rule(35));
  const service = startService({
    ...topicEnv(n),
    RULES_DIR: dir,
  });
  const producer = kafka().producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  // A steady stream: value 30, or `value` when set, every 50 ms, for at most 60 s.
  let value = 30;
  let sent = 0;
  let producing = true;
  const stream = (async () => {
    const deadline = Date.now() + 60_000;
    while (producing && Date.now() < deadline) {
      sent++;
      const e = {
        event_id: `reload-${sent}`,
        sensor_id: "temp-r",
        sensor_type: "temperature",
        value,
        unit: "°C",
        timestamp: new Date().toISOString(),
      };
      await producer.send({
        topic: n.events,
        acks: -1,
        messages: [{ key: "temperature:temp-r", value: JSON.stringify(e) }],
      });
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  try {
    await service.waitForLine(/Joined consumer group.*reload.*processors/, 60_000);
    await waitFor("events to flow", async () => sent > 20 && (await groupLag(n.group, n.events)) < 5);
    assert.equal((await readTopic(n.alerts, () => false, 1_000)).length, 0, "30 °C is within max 35");

    const editedAt = Date.now();
    await Deno.writeTextFile(`${dir}/hot.yaml`, rule(25));
    const [first] = await readTopic(n.alerts, (v) => v.length >= 1, 30_000);
    const alert = SensorAlert.parse(JSON.parse(first!.value));
    assert.equal(alert.rule_id, "reload-hot");
    assert.equal(alert.threshold, 25);
    const effectMs = Date.parse(alert.timestamp) - editedAt;
    print(`rule edit → first alert for an event stamped ${effectMs} ms after the save`);
    assert.ok(effectMs < 3_000, `the edit took effect ${effectMs} ms after the save`);

    // A broken file: the service reports file:line and keeps max 25.
    await Deno.writeTextFile(`${dir}/hot.yaml`, "rules:\n  - id: reload-hot\n    threshold: { max: [25\n");
    await service.waitForLine(/Rule problem: .*hot\.yaml:\d+:\d+/, 10_000);
    value = 20; // resolves the episode under the old rule…
    await readTopic(n.alerts, (v) => v.some((x) => JSON.parse(x).state === "resolved"), 30_000);
    value = 30; // …and 30 fires again, which only the last good rule (max 25) does.
    const all = await readTopic(n.alerts, (v) => v.length >= 3, 30_000);
    const states = all.map((r) => JSON.parse(r.value).state);
    assert.deepEqual(states.slice(0, 3), ["firing", "resolved", "firing"]);
    producing = false;
    await stream;
    await waitFor("the engine to catch up", async () => (await groupLag(n.group, n.events)) === 0);
  } finally {
    producing = false;
    await stream;
    await producer.disconnect();
    const status = await service.stop();
    await Deno.remove(dir, { recursive: true });
    assert.equal(status.code, 0, service.stderr().slice(-2000));
  }
});
