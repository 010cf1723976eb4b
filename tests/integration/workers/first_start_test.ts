/**
 * The first start of `WORKERS=2` on a broker that does not hold a new group's first rebalance
 * (`group.initial.rebalance.delay.ms=0`, as the test broker and many dev clusters run): the first
 * worker to join takes every partition, and the second's join moves some of them a heartbeat later.
 * No worker may handle a record before both are in the group, or a partition moves with batches
 * processed and not committed, and its next owner alerts on them again (at-least-once).
 */
import assert from "node:assert/strict";
import { groupLag, readTopic, waitFor } from "../../helpers/kafka.ts";
import { alertsOf, Fleet, startWorkers } from "./fixture.ts";

Deno.test("WORKERS=2, first start: no record is handled before both workers are in the group", async () => {
  const fleet = new Fleet("first");
  // The events are there before the service starts, for the first worker's first fetch.
  const { n, service, cleanup } = await startWorkers(
    "workers-first",
    { PROCESSING_GUARANTEE: "at_least_once" },
    (n) => fleet.send(n.events, 40, (r) => r % 2 === 0 ? 20 : 40),
  );
  try {
    const line = await service.waitForLine(/"msg":"Engine workers started"/, 90_000);
    const started = Date.parse((JSON.parse(line) as { time: string }).time);
    const joins = service.stderr().split("\n").filter((l) => l.includes('"msg":"Joined consumer group"'));
    await waitFor("the events committed", async () => (await groupLag(n.group, n.events)) === 0, 60_000);
    const expected = fleet.expectedAlerts();
    const records = await readTopic(n.alerts, (v) => v.length >= expected, 30_000);
    const early = records.filter((r) => r.timestamp < started);
    assert.deepEqual(
      early.map((r) => r.timestamp - started),
      [],
      `alerts written before every worker was in the group (ms before "Engine workers started"); joins:\n${
        joins.join("\n")
      }`,
    );
    const ids = alertsOf(records).map((a) => `${a.alert_id}/${a.state}`);
    assert.equal(ids.length, expected);
    assert.equal(new Set(ids).size, ids.length, "no alert twice");
  } finally {
    await service.stop();
    await cleanup();
  }
});
