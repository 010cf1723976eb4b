/**
 * The state of per-sensor limits, anomaly operations and sequences survives a restart and a
 * rebalance: a first instance learns it, a second joins the group (rebalance) and takes the partition
 * over when the first stops, restoring it from the changelog. Each verdict after the move needs the
 * state from before it: a warmed-up baseline, an open episode, a partial match, a pending deadline.
 */
import assert from "node:assert/strict";
import { SensorAlert } from "../../src/contract/schemas.ts";
import {
  createTopics,
  groupLag,
  produce,
  readTopic,
  topicEnv,
  uniqueNames,
  waitFor,
} from "../helpers/kafka.ts";
import { startService } from "../helpers/service.ts";

const RULES = `rules:
  - id: band
    sensor_id: lim-1
    limits: band
    priority: high
  - id: spike
    sensor_id: z-1
    condition: { ">": [{ zscore: [value, 2m] }, 4] }
    priority: high
  - id: robust-spike
    sensor_id: rz-1
    condition: { ">": [{ robust_zscore: [value, 10m] }, 6] }
    priority: high
  - id: door-then-warm
    group_by: location
    sequence:
      first: { sensor_type: motion, condition: { "==": [{ var: value }, 1] } }
      then: { sensor_type: temperature, condition: { ">": [{ var: value }, 25] } }
      within: 5m
    priority: high
  - id: setpoint-not-reached
    group_by: location
    sequence:
      first: { sensor_type: pressure, condition: { "!=": [{ var: metadata.setpoint }, null] } }
      not_then: { sensor_type: temperature, condition: { ">=": [{ var: value }, 21] } }
      within: 15m
    priority: normal
  # A group value from metadata may hold U+0000, the changelog key's separator.
  - id: door-then-warm-room
    group_by: metadata.room
    sequence:
      first: { sensor_type: motion, condition: { "==": [{ var: value }, 1] } }
      then: { sensor_type: temperature, condition: { ">": [{ var: value }, 25] } }
      within: 5m
    priority: high
limits:
  band:
    default: { min: 10, max: 35 }
`;

Deno.test("limits, anomaly and sequence state survive a rebalance and a restart through the changelog", async () => {
  const n = uniqueNames("fleet-state");
  // One partition: it moves from the first instance to the second, whole.
  await createTopics([n.events, n.alerts, n.dlq, n.aggregates], 1);
  const dir = await Deno.makeTempDir({ dir: ".", prefix: ".test-rules-" });
  await Deno.writeTextFile(`${dir}/rules.yaml`, RULES);
  const env = { ...topicEnv(n), RULES_DIR: dir, KAFKA_SESSION_TIMEOUT_MS: "6000" };
  // Event times an hour ago: all in the past for the wall clock, spread over minutes.
  const t0 = Math.floor(Date.now() / 60_000) * 60_000 - 3_600_000;
  let i = 0;
  const msg = (sensor_id: string, sensor_type: string, s: number, value: number, extra: object = {}) => ({
    key: `${sensor_type}:${sensor_id}`,
    value: JSON.stringify({
      event_id: `${n.events}-${i++}`,
      sensor_id,
      sensor_type,
      value,
      unit: "",
      timestamp: new Date(t0 + s * 1000).toISOString(),
      ...extra,
    }),
  });
  const before = [
    // A steady baseline over 5 minutes (more than the 2-minute half-life of the warm-up).
    ...Array.from({ length: 30 }, (_, k) => msg("z-1", "temperature", k * 10, 20 + (k % 3) * 0.1)),
    // A window of 30 values (warm-up: the 10-minute window, from its first value).
    ...Array.from({ length: 30 }, (_, k) => msg("rz-1", "temperature", k * 10, 20 + (k % 3) * 0.1)),
    msg("lim-1", "temperature", 300, 40), // over the table's 35: fires
    msg("door-1", "motion", 600, 1, { location: "Hall" }), // A, waiting for its B
    msg("valve-1", "pressure", 600, 1013, { location: "Lab", metadata: { setpoint: 21 } }), // A: deadline 25m
    msg("door-2", "motion", 600, 1, { metadata: { room: "R\u0000B" } }), // A, its group with a NUL
  ];
  const after = [
    msg("z-1", "temperature", 610, 30), // far from the learnt baseline
    msg("rz-1", "temperature", 610, 30), // far from the window's median
    msg("rz-1", "temperature", 620, 20), // back to it
    msg("lim-1", "temperature", 610, 41), // the episode goes on: no second firing
    msg("temp-hall", "temperature", 720, 26, { location: "Hall" }), // B within 5m of the door
    msg("temp-room", "temperature", 720, 26, { metadata: { room: "R\u0000B" } }), // B for door-2
    msg("lim-1", "temperature", 720, 20), // back inside: resolves the restored episode
    msg("z-1", "temperature", 1560, 20), // moves the clock past Lab's deadline (26m)
  ];

  const first = startService(env, ["--role", "engine"]);
  let second: ReturnType<typeof startService> | null = null;
  try {
    await first.waitForLine(/Joined consumer group/, 90_000);
    await produce(n.events, before);
    await readTopic(n.alerts, (v) => v.some((x) => x.includes('"rule_id":"band"')), 60_000);
    await waitFor(
      "the first instance to commit everything",
      async () => (await groupLag(n.group, n.events)) === 0,
    );

    // A rebalance: the second instance joins, then the first leaves and the partition moves.
    second = startService(env, ["--role", "engine"]);
    await second.waitForLine(/Joined consumer group/, 90_000);
    assert.equal((await first.stop("SIGTERM")).code, 0, first.stderr().slice(-2000));
    await produce(n.events, after);
    // The partition's state is read back from the changelog before its first batch here.
    await second.waitForLine(/Restored partition state/, 90_000);

    const alerts = (await readTopic(
      n.alerts,
      (v) => v.some((x) => x.includes('"rule_id":"setpoint-not-reached"')),
      90_000,
    )).map((r) => {
      const a = JSON.parse(r.value) as SensorAlert;
      SensorAlert.parse(a);
      return a;
    });
    const of = (rule: string) => alerts.filter((a) => a.rule_id === rule).map((a) => [a.state, a.value]);

    // The last event (20 at 26m) resolves the spike; the clock it moves resolves the door's match.
    assert.deepEqual(
      of("spike"),
      [["firing", 30], ["resolved", 20]],
      "the baseline was restored (a fresh one would be warming up)",
    );
    const spike = alerts.find((a) => a.rule_id === "spike")!;
    assert.ok(Math.abs(spike.anomaly![0]!.baseline - 20.1) < 0.2, JSON.stringify(spike.anomaly));

    assert.deepEqual(
      of("robust-spike"),
      [["firing", 30], ["resolved", 20]],
      "the window was restored (a fresh one would be warming up)",
    );
    const robust = alerts.find((a) => a.rule_id === "robust-spike")!;
    assert.equal(robust.anomaly![0]!.baseline, 20.1, JSON.stringify(robust.anomaly));

    assert.deepEqual(of("band"), [["firing", 40], ["resolved", 20]], "the open episode was restored");
    const band = alerts.filter((a) => a.rule_id === "band");
    assert.equal(band[1]!.alert_id, band[0]!.alert_id);
    assert.equal(band[0]!.limits?.from, "default");

    assert.deepEqual(
      of("door-then-warm"),
      [["firing", 26], ["resolved", 26]],
      "the partial match was restored",
    );
    // Before, its key had an extra part and the partial match was left out on restore, unreported.
    const room = alerts.filter((a) => a.rule_id === "door-then-warm-room");
    assert.deepEqual(
      room.map((a) => [a.state, a.value, a.group]),
      [["firing", 26, "R\u0000B"], ["resolved", 26, "R\u0000B"]],
      "the partial match of a group with a NUL was restored",
    );
    assert.doesNotMatch(second.stderr(), /Skipped a changelog record/);
    const lab = alerts.filter((a) => a.rule_id === "setpoint-not-reached");
    assert.deepEqual(lab.map((a) => [a.state, a.group, a.timestamp]), [
      ["firing", "Lab", new Date(t0 + 25 * 60_000).toISOString()],
    ], "the pending deadline was restored");
  } finally {
    await first.stop();
    await second?.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
