/**
 * `WORKERS=2` against the real broker: two engine workers in one process share the events topic's
 * partitions as members of one group, the HTTP API shows them as one service, an acknowledgement
 * reaches the worker that owns the alert, a worker that crashes is replaced with no alert lost or
 * repeated (exactly-once), and SIGTERM drains both.
 */
import assert from "node:assert/strict";
import type { SensorAlert } from "../../../src/contract/schemas.ts";
import { groupLag, readTopic, waitFor, withAdmin } from "../../helpers/kafka.ts";
import { scrape } from "../../helpers/metrics.ts";
import { httpUrl } from "../../helpers/service.ts";
import { alertsOf, Fleet, startWorkers } from "./fixture.ts";

const fleet = new Fleet("w");
const SENSORS = fleet.sensors;
const send = fleet.send.bind(fleet);
const expectedAlerts = () => fleet.expectedAlerts();

/** An alert's identity: a replacement worker that published one again would repeat it. */
const identity = (a: SensorAlert) => `${a.alert_id}/${a.state}/${a.acknowledged}`;

Deno.test("two engine workers in one process: one service, acks reach the owner, a crash loses and repeats nothing, SIGTERM drains both", async (t) => {
  // Worker 0 owns two of the four partitions (four sensors): 16 events in the first phase, 400 in the
  // second, so it crashes in the second.
  const { n, service, cleanup } = await startWorkers("workers", { WORKERS_TEST_CRASH: "0:150" });
  let stopped = false;
  try {
    const base = await httpUrl(service, 60_000);

    await t.step("both workers join the group, each with partitions of its own", async () => {
      await waitFor(
        "/readyz to answer 200",
        async () => (await fetch(`${base}/readyz`)).status === 200,
        90_000,
      );
      const joins = service.stderr().split("\n").filter((l) => l.includes('"msg":"Joined consumer group"'))
        .map((l) => JSON.parse(l) as { worker?: number; group: string; partitions: string })
        .filter((j) => j.group === n.group);
      const owned = new Map<number, string>();
      for (const j of joins) if (j.worker !== undefined) owned.set(j.worker, j.partitions);
      assert.deepEqual([...owned.keys()].sort(), [0, 1], `joins: ${JSON.stringify(joins)}`);
      const all = [...owned.values()].flatMap((p) => p.split(",")).filter((p) => p !== "").sort();
      assert.deepEqual(all, ["0", "1", "2", "3"], "the workers share every partition, none twice");
      assert.ok([...owned.values()].every((p) => p !== ""), "each worker owns partitions");
    });

    await t.step(
      "the workers neither load the notifiers nor follow the silences topic: the main thread does, once",
      async () => {
        const loaded = service.stderr().split("\n").filter((l) => l.includes('"msg":"Notifiers loaded"'))
          .map((l) => JSON.parse(l) as { worker?: number });
        assert.deepEqual(loaded.map((l) => l.worker ?? "main"), ["main"]);
        // Each follower of the silences topic is a consumer group of its own (`<notifier group>-silences-<uuid>`).
        const followers = await withAdmin(async (admin) => {
          const ids = (await admin.listGroups()).groups.map((g) => g.groupId)
            .filter((g) => g.startsWith(`${n.notifierGroup}-silences-`));
          const { groups } = await admin.describeGroups(ids);
          return groups.filter((g) => g.members.length > 0).length;
        });
        assert.equal(followers, 1, "followers of the silences topic");
      },
    );

    await t.step("/api/sensors and /api/alerts show the sensors and alerts of both workers", async () => {
      // Every sensor goes hot and stays hot: one firing alert each.
      await send(n.events, 4, (r) => r === 0 ? 20 : 40);
      // Once the group committed them, the API answers with them at once (no polling): it asks the
      // workers for their state, not only their last periodic snapshot.
      await waitFor("the events committed", async () => (await groupLag(n.group, n.events)) === 0, 60_000);
      const { sensors } = await (await fetch(`${base}/api/sensors`)).json() as {
        sensors: { sensor_id: string; count: number; state: string }[];
      };
      assert.deepEqual(
        sensors.map((s) => [s.sensor_id, s.count, s.state]).sort(),
        SENSORS.map((id) => [id, 4, "high"]).sort(),
      );
      const { active } = await (await fetch(`${base}/api/alerts?state=firing`)).json() as {
        active: SensorAlert[];
      };
      assert.deepEqual(active.map((a) => a.sensor_id).sort(), [...SENSORS].sort());
    });

    await t.step("an acknowledgement reaches the worker that owns the alert, on either worker", async () => {
      const { active } = await (await fetch(`${base}/api/alerts?state=firing`)).json() as {
        active: SensorAlert[];
      };
      // Sensors 0 and 1 are on partitions 0 and 1: whichever way the partitions went, acking both of
      // the sensors of partitions 0..3 reaches both workers.
      const picked = active.filter((a) => ["w-0", "w-1", "w-2", "w-3"].includes(a.sensor_id));
      assert.equal(picked.length, 4);
      for (const alert of picked) {
        const res = await fetch(`${base}/api/alerts/${encodeURIComponent(alert.alert_id)}/ack`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ by: "tester" }),
        });
        const body = await res.json() as { alert?: SensorAlert; error?: string };
        assert.equal(res.status, 200, body.error);
        assert.equal(body.alert!.acknowledged, true);
        assert.equal(body.alert!.acknowledged_by, "tester");
      }
      // The owners' own snapshots say so (not only the answer), and the alerts topic has the update.
      await waitFor("4 acknowledged alerts in /api/alerts", async () => {
        const body = await (await fetch(`${base}/api/alerts?state=acknowledged`)).json() as {
          active: SensorAlert[];
        };
        return body.active.length === 4;
      }, 30_000);
      const ids = new Set(picked.map((a) => a.alert_id));
      await readTopic(
        n.alerts,
        (values) =>
          values.map((v) => JSON.parse(v) as SensorAlert).filter((a) => a.acknowledged && ids.has(a.alert_id))
            .length === 4,
      );
      const unknown = await fetch(`${base}/api/alerts/no-such-alert/ack`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: "{}",
      });
      assert.equal(unknown.status, 404);
      await unknown.body?.cancel();
    });

    await t.step("the dashboard's stream gets the sensor updates of both workers", async () => {
      const res = await fetch(`${base}/api/stream`);
      const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
      let text = "";
      /** The next SSE message of type `event`, read within a bounded number of chunks. */
      const next = async (event: string): Promise<unknown> => {
        for (let chunks = 0; chunks < 200; chunks++) {
          for (;;) {
            const end = text.indexOf("\n\n");
            if (end < 0) break;
            const message = text.slice(0, end);
            text = text.slice(end + 2);
            const type = /^event: (.*)$/m.exec(message)?.[1];
            if (type === event) return JSON.parse(/^data: (.*)$/m.exec(message)![1]!);
          }
          const { value, done } = await reader.read();
          if (done) throw new Error(`The stream ended before a "${event}" message`);
          text += value;
        }
        throw new Error(`No "${event}" message in 200 chunks`);
      };
      try {
        const initial = await next("sensors") as { sensor_id: string; count: number }[];
        assert.deepEqual(
          initial.map((x) => [x.sensor_id, x.count]).sort(),
          SENSORS.map((id) => [id, 4]).sort(),
        );
        // One more hot value each (no new alert): the workers send sensor stats while a dashboard watches.
        await send(n.events, 1, () => 40);
        const updated = new Set<string>();
        for (let messages = 0; messages < 100 && updated.size < SENSORS.length; messages++) {
          for (const x of await next("sensors") as { sensor_id: string; count: number }[]) {
            if (x.count === 5) updated.add(x.sensor_id);
          }
        }
        assert.deepEqual([...updated].sort(), [...SENSORS].sort());
      } finally {
        await reader.cancel();
      }
    });

    await t.step("a worker that crashes is replaced: no alert lost, none repeated", async () => {
      // Every sensor alternates cool and hot: 100 rounds of 8 events, one alert per event.
      await send(n.events, 100, (r) => r % 2 === 0 ? 20 : 40);
      await service.waitForLine(/"msg":"Engine worker crashed: starting it again/, 120_000);
      await service.waitForLine(/"msg":"Engine worker started again"/, 120_000);
      const expected = expectedAlerts() + 4; // and the 4 acknowledgements
      // Until every expected alert came: an alert read twice must not end the read early.
      const records = alertsOf(
        await readTopic(
          n.alerts,
          (v) => new Set(v.map((x) => identity(JSON.parse(x) as SensorAlert))).size >= expected,
          180_000,
        ),
      );
      const identities = new Set(records.map(identity));
      assert.equal(identities.size, expected, "alerts lost");
      // Nothing the crashed worker published is published again by its partitions' next owner, and
      // nothing of its aborted last transactions is read (kafkajs showed those: src/transport/read_committed.ts).
      const counts = new Map<string, number>();
      for (const r of records) counts.set(identity(r), (counts.get(identity(r)) ?? 0) + 1);
      assert.deepEqual([...counts].filter(([, n]) => n > 1), [], "alerts repeated");
      assert.equal(records.length, expected, "alerts read");
      // /metrics sums the workers, the one that died included.
      await waitFor("every event counted in /metrics, the group joined again", async () => {
        const s = await scrape(base);
        return (s.value("sensor_events_accepted_total") ?? 0) >= 8 * 105 &&
          s.value("sensor_consumer_joined", { group: n.group }) === 1;
      }, 60_000);
    });

    await t.step("SIGTERM drains every worker: exit 0, the group left at once", async () => {
      await send(n.events, 20, (r) => r % 2 === 0 ? 20 : 40);
      const status = await service.stop("SIGTERM");
      stopped = true;
      assert.equal(status.code, 0, service.stderr().slice(-3000));
      // The crash was said in the log's own lines, not as Deno's trace of an uncaught error.
      assert.doesNotMatch(service.stderr(), /Uncaught/);
      // Members that left (not died) leave no one behind for the session timeout to expire.
      const group = await withAdmin((admin) => admin.describeGroups([n.group]));
      assert.deepEqual(group.groups[0]?.members, []);
      const lines = service.stderr().split("\n").filter((l) => l.includes("Shutting down"));
      assert.ok(lines.length >= 1);
    });
  } finally {
    if (!stopped) await service.stop("SIGKILL");
    await cleanup();
  }
});
