import assert from "node:assert/strict";
import {
  EventHistory,
  type HistoryRead,
  parseOneRule,
  whatIf,
  type WhatIfHistory,
  WhatIfRuleError,
} from "../../src/backtest/whatif.ts";
import { TopicHistory } from "../../src/backtest/whatif_topic.ts";
import type { InputRecord } from "../../src/contract/records.ts";
import { createLogger } from "../../src/log.ts";
import { createKafka, kafkaSettingsFromEnv } from "../../src/transport/kafka.ts";
import type { SensorEvent } from "../../src/contract/schemas.ts";

const T0 = Date.UTC(2026, 0, 1);

function feed(h: EventHistory, sensor: string, s: number, value: number, partition: number | null = 0): void {
  const event = {
    event_id: `${sensor}-${s}`,
    sensor_id: sensor,
    sensor_type: "temperature",
    value,
    unit: "°C",
    timestamp: new Date(T0 + s * 1000).toISOString(),
    location: "hall",
    metadata: {},
    schema_version: 1,
  } satisfies SensorEvent;
  h.onEvent({ event, time: T0 + s * 1000, key: "" }, {
    topic: "t",
    partition,
    offset: null,
    key: null,
    value: null,
  });
}

Deno.test("EventHistory keeps the newest events up to its count, oldest dropped first, in arrival order", () => {
  const h = new EventHistory({ maxEvents: 3 });
  for (let s = 0; s < 5; s++) feed(h, `s-${s}`, s, s * 10, s % 2 === 0 ? null : 1);
  assert.equal(h.full, true);
  assert.deepEqual(
    h.events().map((k) => [k.event.sensor_id, k.event.value, k.event.timestamp, k.partition]),
    [
      ["s-2", 20, new Date(T0 + 2000).toISOString(), null],
      ["s-3", 30, new Date(T0 + 3000).toISOString(), 1],
      ["s-4", 40, new Date(T0 + 4000).toISOString(), null],
    ],
  );
  assert.equal(h.events()[0]!.event.location, "hall");
});

Deno.test("EventHistory gives back only the last maxAgeMs of event time before its newest event", () => {
  const h = new EventHistory({ maxAgeMs: 60_000, maxEvents: 100 });
  for (const s of [0, 30, 59, 60, 61, 120]) feed(h, "a", s, s);
  assert.equal(h.full, false);
  assert.deepEqual(h.events().map((k) => k.event.value), [60, 61, 120]);
});

Deno.test("EventHistory skips the events of sensors beyond its table, counting them", () => {
  const h = new EventHistory({ maxSensors: 2 });
  feed(h, "a", 0, 1);
  feed(h, "b", 1, 2);
  feed(h, "c", 2, 3);
  feed(h, "a", 3, 4);
  assert.equal(h.skipped, 1);
  assert.deepEqual(h.events().map((k) => k.event.sensor_id), ["a", "b", "a"]);
});

Deno.test("parseOneRule() takes a rule's mapping or a file of one rule, and locates problems in the text given", () => {
  const rule = "id: hot\nsensor_type: temperature\nthreshold: { max: 30 }\npriority: high\n";
  assert.deepEqual([...parseOneRule(rule).byId.keys()], ["hot"]);
  assert.deepEqual([
    ...parseOneRule(`rules:\n  - ${rule.trimEnd().split("\n").join("\n    ")}\n`).byId.keys(),
  ], [
    "hot",
  ]);
  const bad = () => parseOneRule(rule.replace("priority: high", "priority: urgent"));
  assert.throws(bad, WhatIfRuleError);
  assert.throws(bad, /: what-if\.yaml:4:11 hot: Field "priority"/);
  assert.throws(() => parseOneRule(`rules: []\n`), /Give exactly one rule, got 0/);
});

/** A history of `records` in one batch, then nothing more until it is closed (or 30 s pass). */
function stalling(records: InputRecord[]): WhatIfHistory & { closed: boolean; windows: number[] } {
  const h = {
    source: "topic" as const,
    label: "a stalling history",
    maxWindowMs: 3_600_000,
    maxEvents: 100,
    closed: false,
    windows: [] as number[],
    read(windowMs: number): Promise<HistoryRead> {
      h.windows.push(windowMs);
      let release!: () => void;
      const released = new Promise<void>((r) => release = r);
      async function* batches(): AsyncGenerator<InputRecord[]> {
        yield records;
        let guard: ReturnType<typeof setTimeout> | undefined;
        await Promise.race([released, new Promise((r) => guard = setTimeout(r, 30_000))]);
        clearTimeout(guard);
        if (!h.closed) throw new Error("Not stopped by the time limit");
      }
      return Promise.resolve({
        batches: batches(),
        capped: false,
        decode: { requireKey: false },
        close: () => {
          h.closed = true;
          release();
          return Promise.resolve();
        },
      });
    },
  };
  return h;
}

function record(sensor: string, s: number, value: number): InputRecord {
  return {
    topic: "t",
    partition: 0,
    offset: String(s),
    key: null,
    value: JSON.stringify({
      event_id: `${sensor}-${s}`,
      sensor_id: sensor,
      sensor_type: "temperature",
      value,
      unit: "°C",
      timestamp: new Date(T0 + s * 1000).toISOString(),
    }),
  };
}

Deno.test("whatIf() stops at its time limit with what it read, closes the reading and says timed_out", async () => {
  const history = stalling([record("a", 0, 20), record("a", 1, 50), record("b", 2, 20)]);
  const rule = parseOneRule("id: hot\nsensor_type: temperature\nthreshold: { max: 30 }\npriority: high\n");
  const result = await whatIf(rule, history, { windowMs: 600_000, timeLimitMs: 50 });
  assert.equal(history.closed, true);
  assert.deepEqual(history.windows, [600_000]);
  assert.equal(result.history.timed_out, true);
  assert.equal(result.history.events, 3);
  assert.equal(result.history.window_seconds, 600);
  assert.equal(result.report.input.interrupted, true);
  assert.deepEqual(result.report.episodes.map((e) => [e.group, e.start]), [
    ["a", new Date(T0 + 1000).toISOString()],
  ]);
});

Deno.test("whatIf() over EventHistory reads the window asked for, never more than the history holds", async () => {
  const h = new EventHistory({ maxAgeMs: 60_000, maxEvents: 100 });
  for (const s of [0, 20, 40, 50, 55]) feed(h, "a", s, s === 20 ? 99 : 1);
  const rule = parseOneRule("id: hot\nsensor_type: temperature\nthreshold: { max: 30 }\npriority: high\n");
  const short = await whatIf(rule, h, { windowMs: 30_000 });
  assert.deepEqual([short.history.events, short.history.window_seconds, short.history.source], [
    3,
    30,
    "memory",
  ]);
  assert.equal(short.report.episodes.length, 0);
  const long = await whatIf(rule, h, { windowMs: 3_600_000 });
  assert.deepEqual([long.history.events, long.history.window_seconds], [5, 60]);
  assert.equal(long.report.episodes.length, 1);
  assert.equal(long.history.timed_out, false);
});

Deno.test("EventHistory says capped only when the count bound cut the window asked for short", async () => {
  const h = new EventHistory({ maxAgeMs: 60_000, maxEvents: 3 });
  for (const s of [0, 10, 20, 30]) feed(h, "a", s, 1);
  assert.equal((await h.read(60_000)).capped, true);
  assert.equal((await h.read(15_000)).capped, false);
});

Deno.test("whatIf() over TopicHistory fails with the client's reason when no broker answers", async () => {
  // A port that was free a moment ago: the connection is refused at once.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const logger = createLogger({ level: "error" });
  const kafka = createKafka(kafkaSettingsFromEnv([`127.0.0.1:${port}`]), logger, { retries: 0 });
  const rule = parseOneRule("id: hot\nsensor_type: temperature\nthreshold: { max: 30 }\npriority: high\n");
  await assert.rejects(
    whatIf(rule, new TopicHistory({ kafka, topic: "sensor-events", logger })),
    /Connection error|ECONNREFUSED|connect/i,
  );
});
