import assert from "node:assert/strict";
import type { SensorAlert } from "../../src/contract/schemas.ts";
import type { OpenEpisode } from "../../src/engine/types.ts";
import type { Counters } from "../../src/pipeline.ts";
import type { WorkerSnapshot } from "../../src/workers/protocol.ts";
import { encodeSensors } from "../../src/workers/sensors.ts";
import { WorkersView } from "../../src/workers/view.ts";

function counters(events: number, partition: number): Counters {
  return {
    events,
    accepted: events - 1,
    duplicates: 1,
    dead_lettered: 0,
    dead_letters: { decode: 1 },
    alerts: 2,
    aggregates: 0,
    late_events: 0,
    sensors_forgotten: 0,
    state_unwritten: 1,
    consumed: new Map([[`events\u0000${partition}`, events]]),
    invalid: new Map([["decode\u0000invalid_json", 1]]),
    sequence_dropped: { cap: 1, timeout: 0 },
  };
}

function episode(alertId: string, sensor: string): OpenEpisode {
  return {
    alert_id: alertId,
    rule_id: "too-hot",
    acknowledged: false,
    alert: { alert_id: alertId, sensor_id: sensor, acknowledged: false } as SensorAlert,
  };
}

const changed = (...eps: OpenEpisode[]) => ({ episodes: { changed: eps, closed: [] } });

function snapshot(over: Partial<WorkerSnapshot>): WorkerSnapshot {
  return {
    counters: counters(0, 0),
    episodes: null,
    episodeCount: 0,
    sensors: null,
    alerts: [],
    batches: [],
    memory: { heapUsed: 0, heapTotal: 0, external: 0 },
    source: { joined: true, problem: null, deletedUnread: new Map(), recreations: 0, held: new Map() },
    ...over,
  };
}

const sensor = (id: string, count: number) => ({
  sensor_id: id,
  sensor_type: "temperature",
  unit: "°C",
  location: null,
  count,
  sum: count,
  min: 1,
  max: 1,
  last_value: 1,
  last_update: 0,
  recent: [1],
});

Deno.test("WorkersView sums the workers' counters and keeps a dead worker's counts", () => {
  const view = new WorkersView(2);
  view.update(0, snapshot({ counters: counters(10, 0) }));
  view.update(1, snapshot({ counters: counters(5, 1) }));
  assert.equal(view.counters.events, 15);
  assert.equal(view.counters.state_unwritten, 2);
  assert.deepEqual(view.counters.dead_letters, { decode: 2 });
  assert.deepEqual([...view.counters.consumed], [["events\u00000", 10], ["events\u00001", 5]]);
  view.retire(0);
  // Its successor starts counting from zero: the sum never goes down.
  view.update(0, snapshot({ counters: counters(3, 0) }));
  assert.equal(view.counters.events, 18);
  assert.deepEqual([...view.counters.consumed], [["events\u00000", 13], ["events\u00001", 5]]);
});

Deno.test("WorkersView applies the episodes that changed and closed, and forgets a dead worker's", () => {
  const view = new WorkersView(2);
  view.update(0, snapshot(changed(episode("a-1", "s-1"), episode("a-2", "s-3"))));
  view.update(1, snapshot(changed(episode("b-1", "s-2"))));
  // A snapshot without episodes changes none; one with changes replaces and closes what it names.
  view.update(0, snapshot({ episodes: null }));
  assert.deepEqual(view.tracker.active().map((e) => e.alert_id), ["a-1", "a-2", "b-1"]);
  view.update(
    0,
    snapshot({ episodes: { changed: [{ ...episode("a-1", "s-1"), acknowledged: true }], closed: ["a-2"] } }),
  );
  assert.deepEqual(view.tracker.active().map((e) => [e.alert_id, e.acknowledged]), [["a-1", true], [
    "b-1",
    false,
  ]]);
  assert.equal(view.owner("b-1"), 1);
  assert.equal(view.owner("nope"), -1);
  view.retire(1);
  assert.deepEqual(view.tracker.active().map((e) => e.alert_id), ["a-1"]);
});

Deno.test("WorkersView shows an acknowledgement before the owner's next snapshot", () => {
  const view = new WorkersView(1);
  view.update(0, snapshot(changed(episode("a-1", "s-1"))));
  view.acknowledged(0, { alert_id: "a-1", sensor_id: "s-1", acknowledged: true } as SensorAlert);
  const [ep] = view.tracker.active();
  assert.equal(ep?.acknowledged, true);
  assert.equal(ep?.alert?.acknowledged, true);
});

Deno.test("WorkersView merges the workers' sensors, newest stats win, within its size limit", () => {
  const view = new WorkersView(2, 3);
  assert.deepEqual(
    view.update(0, snapshot({ sensors: encodeSensors([sensor("s-1", 1), sensor("s-2", 1)]) })),
    [
      "s-1",
      "s-2",
    ],
  );
  view.update(1, snapshot({ sensors: encodeSensors([sensor("s-3", 1)]) }));
  view.update(0, snapshot({ sensors: encodeSensors([sensor("s-1", 7)]) }));
  assert.equal(view.stats.get("s-1")?.count, 7);
  assert.equal(view.stats.size, 3);
  // A fourth sensor pushes out the first one met, as StatsStore does.
  view.update(1, snapshot({ sensors: encodeSensors([sensor("s-4", 1)]) }));
  assert.deepEqual(view.stats.all().map((s) => s.sensor_id).sort(), ["s-2", "s-3", "s-4"]);
});

Deno.test("WorkersView lists the sensors by id, as one engine does, whichever worker reported first", () => {
  // /api/sensors with two workers came in the order their snapshots arrived (a CI run of
  // tests/integration/http/kafka_api_test.ts: co2-001 last).
  const view = new WorkersView(2);
  view.update(1, snapshot({ sensors: encodeSensors([sensor("hum-001", 1), sensor("temp-001", 1)]) }));
  view.update(0, snapshot({ sensors: encodeSensors([sensor("co2-001", 1), sensor("hum-002", 1)]) }));
  assert.deepEqual(view.stats.all().map((s) => s.sensor_id), ["co2-001", "hum-001", "hum-002", "temp-001"]);
});

Deno.test("WorkersView's consumer is joined only while every worker runs and has joined", () => {
  const view = new WorkersView(2);
  let running = true;
  const source = view.source("g", "t", () => running);
  assert.equal(source.joined, false, "no snapshot yet");
  view.update(0, snapshot({}));
  view.update(
    1,
    snapshot({
      source: {
        joined: false,
        problem: "rejoining",
        deletedUnread: new Map([[2, 5]]),
        recreations: 1,
        held: new Map([[2, "its changelog"]]),
      },
    }),
  );
  assert.equal(source.joined, false);
  assert.equal(source.problem, "rejoining");
  assert.deepEqual([...source.held], [[2, "its changelog"]], "a worker's held partition is the service's");
  view.update(
    1,
    snapshot({
      source: {
        joined: true,
        problem: null,
        deletedUnread: new Map([[2, 5]]),
        recreations: 1,
        held: new Map(),
      },
    }),
  );
  assert.equal(source.joined, true);
  running = false;
  assert.equal(source.joined, false);
  assert.deepEqual([...source.deletedUnread], [[2, 5]]);
  // Every worker sees the topic's one recreation: it counts once.
  view.update(
    0,
    snapshot({
      source: { joined: true, problem: null, deletedUnread: new Map(), recreations: 1, held: new Map() },
    }),
  );
  assert.equal(source.recreations, 1);
  view.retire(1);
  assert.equal(source.recreations, 1);
});

Deno.test("WorkersView reports each running worker's heap as its last snapshot said", () => {
  const view = new WorkersView(3);
  view.update(0, snapshot({ memory: { heapUsed: 10, heapTotal: 20, external: 5 } }));
  view.update(2, snapshot({ memory: { heapUsed: 30, heapTotal: 40, external: 6 } }));
  view.update(2, snapshot({ memory: { heapUsed: 31, heapTotal: 41, external: 7 } }));
  assert.deepEqual(view.workerMemory(), [
    { worker: 0, heapUsed: 10, heapTotal: 20, external: 5 },
    { worker: 2, heapUsed: 31, heapTotal: 41, external: 7 },
  ]);
  view.retire(0);
  assert.deepEqual(view.workerMemory().map((m) => m.worker), [2]);
});
