/**
 * The pipeline under hostile records: whatever a batch holds, `evaluate` returns, every good event
 * interleaved with the hostile ones still alerts, and every event is counted exactly once.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { createLogger } from "../../src/log.ts";
import { type InputRecord, Pipeline } from "../../src/pipeline.ts";
import { RuleRegistry } from "../../src/rules/registry.ts";
import { MemoryOutput } from "../helpers/events.ts";
import { checkProperty } from "../helpers/property.ts";

const registry = new RuleRegistry("rules");
await registry.reload();

const base = {
  sensor_type: "temperature",
  value: 22,
  unit: "°C",
  timestamp: "2026-11-25T21:00:00Z",
};

const loneSurrogate = fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => `x${String.fromCharCode(c)}y`);
const templateBreaking = fc.constantFrom(
  "{{",
  "}}",
  "{{metadata}}",
  "${value}",
  "<!channel>",
  "\u0000\u001b[2J",
);
const oddString = fc.oneof(loneSurrogate, templateBreaking, fc.string({ unit: "binary", maxLength: 40 }));
const hugeLength = fc.integer({ min: 129, max: 300_000 });
const limitNumber = fc.constantFrom(
  Number.MAX_VALUE,
  -Number.MAX_VALUE,
  Number.MIN_VALUE,
  -0,
  2 ** 53,
  1e308,
);

/** A record built to hurt: one value each, as text (deep nesting cannot be written by JSON.stringify). */
const hostile: fc.Arbitrary<string | Uint8Array | null> = fc.oneof(
  fc.integer({ min: 17, max: 100_000 }).map((levels) =>
    JSON.stringify({ ...base, event_id: "deep", sensor_id: "h", metadata: "X" })
      .replace('"X"', `{"a":${"[".repeat(levels)}1${"]".repeat(levels)}}`)
  ),
  fc.tuple(fc.constantFrom("event_id", "sensor_id", "unit", "location"), hugeLength).map(([field, n]) =>
    JSON.stringify({ event_id: "huge", sensor_id: "h", ...base, [field]: "z".repeat(n) })
  ),
  fc.tuple(oddString, oddString, oddString).map(([id, location, unit]) =>
    JSON.stringify({ ...base, event_id: `odd-${id}`, sensor_id: `odd-${id}`, location, unit, value: 99 })
  ),
  limitNumber.map((value) => JSON.stringify({ ...base, event_id: `n-${value}`, sensor_id: "n", value })),
  fc.constantFrom("__proto__", "constructor", "prototype", "toString", "hasOwnProperty").map((k) =>
    `{"event_id":"p-${k}","sensor_id":"p","sensor_type":"temperature","value":50,"unit":"C",` +
    `"timestamp":"2026-11-25T21:00:00Z","metadata":{"${k}":{"polluted":true}}}`
  ),
  fc.uint8Array({ maxLength: 200 }),
  fc.constant(null),
);

Deno.test("Pipeline never throws on hostile records, alerts on every good event among them, and counts each event once", () => {
  checkProperty(
    fc.property(fc.array(hostile, { maxLength: 12 }), (values) => {
      const output = new MemoryOutput();
      const p = new Pipeline({
        ruleSet: () => registry.ruleSet,
        output,
        topics: { alerts: "alerts", dlq: "dlq" },
        logger: createLogger({ level: "error" }),
      });
      const records: InputRecord[] = [];
      const good: string[] = [];
      values.forEach((value, i) => {
        records.push({ topic: "t", partition: 0, offset: String(2 * i), key: null, value });
        // Each good event is the first of its own episode: it must leave an alert.
        const id = `good-${i}`;
        good.push(id);
        records.push({
          topic: "t",
          partition: 0,
          offset: String(2 * i + 1),
          key: null,
          value: JSON.stringify({ ...base, event_id: id, sensor_id: id, value: 50 }),
        });
      });
      const out = p.evaluate(records);
      output.records.push(...out);
      const alerted = new Set(output.on("alerts").map((a) => a.event_id));
      for (const id of good) assert.ok(alerted.has(id), `no alert for ${id}`);
      const c = p.counters;
      assert.equal(c.events, records.length);
      assert.equal(c.events, c.accepted + c.duplicates + c.dead_lettered);
      const dlqOffsets = new Set(output.on("dlq").map((d) => d.original_offset));
      assert.equal(dlqOffsets.size, c.dead_lettered, "each dead-lettered event has a DLQ record");
      for (const r of out) JSON.parse(r.value ?? "null");
    }),
    50,
  );
});
