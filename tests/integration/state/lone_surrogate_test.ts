/**
 * A producer's sensor id with a lone surrogate (`"\ud800"` in its JSON) through a restart: the state
 * changelog's keys travel as UTF-8, which has no form for it. Its open alert must go on under its
 * alert_id and resolve, not fire again, and two such sensors must keep their own state.
 */
import assert from "node:assert/strict";
import { SensorAlert } from "../../../src/contract/schemas.ts";
import {
  createTopics,
  groupLag,
  produce,
  readTopic,
  topicEnv,
  uniqueNames,
  waitFor,
} from "../../helpers/kafka.ts";
import { startService } from "../../helpers/service.ts";

const RULES = `rules:
  - id: hot
    sensor_type: temperature
    threshold: { max: 30 }
    priority: high
`;

Deno.test("sensor ids with lone surrogates keep their open alerts through a restart: none fires twice, each resolves", async () => {
  const n = uniqueNames("lone-surrogate");
  await createTopics([n.events, n.alerts, n.dlq, n.aggregates], 1);
  const dir = await Deno.makeTempDir({ dir: ".", prefix: ".test-rules-" });
  await Deno.writeTextFile(`${dir}/rules.yaml`, RULES);
  const env = { ...topicEnv(n), RULES_DIR: dir };
  // Two ids that differ only in their lone surrogate, and one whose pair is whole (a control).
  const sensors = ["t-\ud800", "t-\udc00", "t-\ud83c\udf21"];
  const t0 = Math.floor(Date.now() / 60_000) * 60_000 - 3_600_000;
  let i = 0;
  // JSON.stringify writes a lone surrogate as the escape `\ud800`, as a producer's JSON may.
  const msg = (sensor_id: string, s: number, value: number) => ({
    // Keyless, as the contract allows: a key with the sensor id would arrive with U+FFFD in place of
    // the surrogate and not match the event (key_mismatch).
    key: null,
    value: JSON.stringify({
      event_id: `${n.events}-${i++}`,
      sensor_id,
      sensor_type: "temperature",
      value,
      unit: "C",
      timestamp: new Date(t0 + s * 1000).toISOString(),
    }),
  });
  // Up to the `resolved` alerts given: every alert before them is on the topic too.
  const alertsUpTo = async (resolved: number, firing = 0) =>
    (await readTopic(
      n.alerts,
      (v) =>
        v.filter((x) => x.includes('"state":"resolved"')).length >= resolved &&
        v.filter((x) => x.includes('"state":"firing"')).length >= firing,
      60_000,
    )).map((r) => SensorAlert.parse(JSON.parse(r.value)));

  let svc = startService(env, ["--role", "engine"]);
  try {
    await svc.waitForLine(/Joined consumer group/, 90_000);
    await produce(n.events, sensors.map((s) => msg(s, 0, 40)));
    assert.equal((await alertsUpTo(0, 3)).length, 3, svc.stderr().slice(-3000));
    await waitFor(
      "the first run to commit everything",
      async () => (await groupLag(n.group, n.events)) === 0,
    );
    assert.equal((await svc.stop("SIGTERM")).code, 0, svc.stderr().slice(-2000));

    svc = startService(env, ["--role", "engine"]);
    await svc.waitForLine(/Joined consumer group/, 90_000);
    // Still hot (the episodes go on, nothing to send), then back inside (each resolves).
    await produce(n.events, [...sensors.map((s) => msg(s, 60, 41)), ...sensors.map((s) => msg(s, 120, 20))]);
    await waitFor(
      "the second run to commit everything",
      async () => (await groupLag(n.group, n.events)) === 0,
    );
    const alerts = await alertsUpTo(3);
    const bySensor = sensors.map((s) =>
      alerts.filter((a) => a.sensor_id === s).map((a) => [a.state, a.alert_id])
    );
    // Before: 9 alerts; both lone-surrogate sensors fired again under new alert_ids after the restart
    // (their episodes were restored as one, under "t-\uFFFD"), and that one stayed open.
    assert.deepEqual(
      bySensor.map((episodes) => episodes.map(([state]) => state)),
      sensors.map(() => ["firing", "resolved"]),
      JSON.stringify(bySensor),
    );
    for (const episodes of bySensor) {
      assert.equal(episodes[1]![1], episodes[0]![1], "resolved under its alert_id");
    }
    assert.equal(alerts.length, 6);
  } finally {
    await svc.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
