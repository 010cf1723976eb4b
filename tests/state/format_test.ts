/** The state changelog's record formats, without a broker (the reader against one: tests/integration/state/). */
import assert from "node:assert/strict";
import type { StateChange } from "../../src/rules/changes.ts";
import { emptyOutput, type RuleEngine } from "../../src/rules/engine.ts";
import { percentile } from "../../src/rules/windows.ts";
import {
  changelogRecords,
  parseSnapshot,
  positionRecord,
  resumeOffset,
  stateAtRecord,
  topicIdRecord,
} from "../../src/state/format.ts";
import { engine, ev, T0 } from "../helpers/engine.ts";

const timer = (last: number) => ({
  rule_hash: "h1",
  last,
  sensor_type: "temperature" as const,
  unit: "C",
  location: null,
});

/** Records as a compacted topic keeps them: the newest value per key, tombstones gone. */
function compacted(records: { key: string | null; value: string | null }[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const r of records) r.value === null ? out.delete(r.key!) : out.set(r.key!, r.value);
  return out;
}

Deno.test("changelogRecords() writes a tombstone for an entry it cannot serialise, reports it and keeps the others", () => {
  const cyclic: Record<string, unknown> = { alert: { event: {} } };
  (cyclic.alert as { event: Record<string, unknown> }).event.self = cyclic;
  const failed: string[] = [];
  const records = changelogRecords(
    "state",
    2,
    [
      { kind: "episode", rule: "r", group: "bad", value: cyclic } as unknown as StateChange,
      { kind: "deadman", rule: "silent", group: "good", value: timer(1) },
    ],
    null,
    (entry, err) => failed.push(`${entry.group}: ${err.message}`),
  );
  assert.deepEqual(records.map((r) => [r.key, r.value]), [
    ["ep\u0000r\u0000bad", null],
    ["dm\u0000silent\u0000good", JSON.stringify(timer(1))],
  ]);
  assert.equal(failed.length, 1);
  assert.match(failed[0]!, /^bad: Converting circular structure to JSON/);
});

Deno.test("parseSnapshot() reads back what changelogRecords() wrote: the newest value per key, ids and position", () => {
  const records = [
    ...changelogRecords("state", 0, [
      { kind: "deadman", rule: "silent", group: "a", value: timer(1) },
      { kind: "deadman", rule: "silent", group: "b", value: timer(1) },
    ], ["e1"]),
    ...changelogRecords("state", 0, [
      { kind: "deadman", rule: "silent", group: "a", value: timer(2) },
      { kind: "deadman", rule: "silent", group: "b", value: null },
    ], ["e1", "e2"]),
    positionRecord("state", 0, "42"),
  ];
  const problems: string[] = [];
  const snapshot = parseSnapshot(compacted(records), (key) => problems.push(key));
  assert.deepEqual(problems, []);
  assert.deepEqual(snapshot.changes, [{ kind: "deadman", rule: "silent", group: "a", value: timer(2) }]);
  assert.deepEqual(snapshot.recentIds, ["e1", "e2"]);
  assert.equal(snapshot.position, "42");
  assert.equal(snapshot.inputPartitions, null);
  assert.equal(snapshot.topicId, null, "state written before topic ids were recorded");
});

Deno.test("parseSnapshot() says which input topic (by id) its offsets are of: the newest record's", () => {
  const records = [
    topicIdRecord("state", 0, "0ceea141-6914-48bf-9b9e-f8e2f1349a6e"),
    positionRecord("state", 0, "500"),
    topicIdRecord("state", 0, "99086c21-3c80-4ed1-b003-c9a465e5fa3e"),
  ];
  const problems: string[] = [];
  const snapshot = parseSnapshot(compacted(records), (key) => problems.push(key));
  assert.deepEqual(problems, []);
  assert.equal(snapshot.topicId, "99086c21-3c80-4ed1-b003-c9a465e5fa3e");
  assert.equal(snapshot.position, "500");
});

Deno.test("parseSnapshot() leaves out and reports a value that is not its kind's shape, naming the field", () => {
  const problems: string[] = [];
  const snapshot = parseSnapshot(
    new Map([
      ["dm\u0000silent\u0000good", JSON.stringify(timer(5))],
      ["dm\u0000silent\u0000bad", JSON.stringify({ ...timer(5), last: "yesterday" })],
      [
        "win\u0000avg\u0000kitchen",
        JSON.stringify({ rule_hash: "h", watermark: 1, accs: [{}], count: null }),
      ],
      ["ep\u0000hot\u0000t1", "{cut"],
      // Not a kind this release knows (a newer one wrote it): ignored, not an error.
      ["zz\u0000hot\u0000t1", "{}"],
    ]),
    (key, err) => problems.push(`${key.replaceAll("\u0000", "/")}: ${err.message}`),
  );
  assert.deepEqual(snapshot.changes.map((c) => c.group), ["good"]);
  assert.equal(problems.length, 3);
  assert.match(problems[0]!, /^dm\/silent\/bad: Not a deadman state: field "last"/);
  assert.match(problems[1]!, /^win\/avg\/kitchen: Not a window state: field "accs\.0\.start"/);
  assert.match(problems[2]!, /^ep\/hot\/t1: /);
});

Deno.test("parseSnapshot() restores a group with a NUL in it (a group_by value from metadata) for every kind", () => {
  // Before, the key's extra part made it skipped without a word: a firing alert fired again under a new
  // alert_id after a restart and the old one never resolved.
  const groups = ["evil\u0000x", "\u0000", "a\u0000\u0000b\u0000", "", '="a\\u0000b"'];
  const kinds = ["episode", "window", "deadman", "flap", "anomaly", "sequence"] as const;
  const alert = {
    alert_id: "a-1",
    sensor_id: "s",
    sensor_type: "temperature",
    priority: "high",
    message: "m",
    value: 1,
    threshold: null,
    timestamp: "2026-11-25T21:00:00.000Z",
    acknowledged: false,
    rule_id: "r-1",
    state: "firing",
    labels: {},
  };
  const values: Record<(typeof kinds)[number], unknown> = {
    episode: {
      alert_id: "a-1",
      rule_id: "r-1",
      rule_hash: "h",
      group: "g",
      phase: "firing",
      since: 1,
      fired_at: 1,
      last_notified: 1,
      repeats: 0,
      acknowledged: false,
      verdict: { threshold: null, bound: null },
      alert,
    },
    window: { rule_hash: "h", watermark: 1, accs: [], count: null },
    deadman: timer(7),
    flap: { rule_hash: "h", times: [1], flapping: false, last: alert },
    anomaly: { rule_hash: "h", slots: [] },
    sequence: { rule_hash: "h", open: [], matched_at: null },
  };
  const changes = kinds.flatMap((kind) =>
    groups.map((group) => ({ kind, rule: "r-1", group, value: values[kind] }) as StateChange)
  );
  const problems: string[] = [];
  const snapshot = parseSnapshot(
    compacted(changelogRecords("state", 0, changes, null)),
    (key, err) => problems.push(`${key}: ${err.message}`),
  );
  assert.deepEqual(problems, []);
  assert.deepEqual(snapshot.changes, changes);
});

Deno.test("parseSnapshot() restores groups with lone surrogates as they were after Kafka's UTF-8, none merged", () => {
  // A producer's JSON may hold "\ud800" in a sensor id, a location or a metadata group; Kafka carries
  // keys as UTF-8, which turns a lone surrogate into U+FFFD. Before, these five groups were restored as
  // one, "s\uFFFD" (or "\uFFFD"), with the state of whichever was written last.
  const groups = ["s\ud800", "s\udc00", "s\uFFFD", "\ud83d", "a\udfffb\u0000c", "\ud83d\ude00"];
  const changes = groups.map((group, i) =>
    ({ kind: "deadman", rule: "silent", group, value: timer(i) }) as StateChange
  );
  const problems: string[] = [];
  const wire = (text: string) => new TextDecoder().decode(new TextEncoder().encode(text));
  const records = changelogRecords("state", 0, changes, null).map((r) => ({
    key: wire(r.key!),
    value: r.value,
  }));
  const snapshot = parseSnapshot(compacted(records), (key, err) => problems.push(`${key}: ${err.message}`));
  assert.deepEqual(problems, []);
  assert.deepEqual(
    snapshot.changes.map((c) => [c.group, (c.value as { last: number }).last]).sort(),
    groups.map((g, i) => [g, i]).sort(),
  );
  // A well-formed group's key is the same bytes as before: changelogs of older releases read alike.
  assert.equal(records[2]!.key, "dm\u0000silent\u0000s\uFFFD");
  assert.equal(records[5]!.key, "dm\u0000silent\u0000\ud83d\ude00");
});

Deno.test("parseSnapshot() reports an escaped state key whose group is not a JSON string, and restores the rest", () => {
  const problems: string[] = [];
  const snapshot = parseSnapshot(
    new Map([
      ['dm~\u0000silent\u0000"s\\ud800"', JSON.stringify(timer(1))],
      ["dm~\u0000silent\u0000s", JSON.stringify(timer(2))],
      ["dm~\u0000silent\u00001", JSON.stringify(timer(3))],
    ]),
    (key, err) => problems.push(`${key.replaceAll("\u0000", "/")}: ${err.message}`),
  );
  assert.deepEqual(snapshot.changes.map((c) => [c.group, (c.value as { last: number }).last]), [[
    "s\ud800",
    1,
  ]]);
  assert.deepEqual(problems, [
    "dm~/silent/s: Not a deadman state key: its group is not a JSON string",
    "dm~/silent/1: Not a deadman state key: its group is not a JSON string",
  ]);
});

Deno.test("parseSnapshot() reads keys as the current release writes them, and reports a key of a known kind without a group", () => {
  const problems: string[] = [];
  const snapshot = parseSnapshot(
    new Map([
      // Written by the release before this one: the same bytes.
      ["dm\u0000silent\u0000temp-001", JSON.stringify(timer(1))],
      ['dm\u0000silent\u0000=["a",1]', JSON.stringify(timer(2))],
      ["dm\u0000silent\u0000evil\u0000x", JSON.stringify(timer(3))],
      ["dm\u0000silent", JSON.stringify(timer(4))],
      ["dm", JSON.stringify(timer(5))],
    ]),
    (key, err) => problems.push(`${key.replaceAll("\u0000", "/")}: ${err.message}`),
  );
  assert.deepEqual(snapshot.changes.map((c) => [c.rule, c.group, (c.value as { last: number }).last]), [
    ["silent", "temp-001", 1],
    ["silent", '=["a",1]', 2],
    ["silent", "evil\u0000x", 3],
  ]);
  assert.deepEqual(problems, [
    "dm/silent: Not a deadman state key: no group after the rule",
    "dm: Not a deadman state key: no group after the rule",
  ]);
});

Deno.test("parseSnapshot() reads where the state stands, the newest record winning, and reports one that is not its shape", () => {
  const problems: string[] = [];
  const at = parseSnapshot(
    compacted([stateAtRecord("state", 0, 120n, 100n), stateAtRecord("state", 0, 180n, 150n)]),
    (key) => problems.push(key),
  ).at;
  assert.deepEqual(at, { next: 180n, handedIn: 150n });
  const bad = parseSnapshot(
    new Map([["at", JSON.stringify({ next: "-1", handed_in: "x" })]]),
    (key) => problems.push(key),
  );
  assert.equal(bad.at, null);
  assert.deepEqual(problems, ["at"]);
});

Deno.test("resumeOffset() goes on after what the state holds only when the group's offset is the one it handed in last", () => {
  // The last transactions handed in no offset: records 100..179 are in the state already.
  assert.equal(resumeOffset(100n, { next: 180n, handedIn: 100n }), 180n);
  // Someone else set the group's offset (a reset to replay history, offsets expired): read from it.
  assert.equal(resumeOffset(0n, { next: 180n, handedIn: 100n }), 0n);
  assert.equal(resumeOffset(150n, { next: 180n, handedIn: 100n }), 150n);
  // A changelog written before the record existed.
  assert.equal(resumeOffset(100n, null), 100n);
});

/** A window group's state as the release before the sketch wrote it: every value of the window. */
function oldWindowState(values: number[], rule_hash: string) {
  const count = values.length;
  const sum = values.reduce((a, b) => a + b, 0);
  const mean = sum / count;
  return {
    rule_hash,
    watermark: T0,
    time: T0 + count - 1,
    accs: [{
      start: T0,
      end: T0 + 3_600_000,
      count,
      sum,
      mean,
      m2: values.reduce((a, v) => a + (v - mean) ** 2, 0),
      min: Math.min(...values),
      max: Math.max(...values),
      first: values[0]!,
      firstT: T0,
      last: values[count - 1]!,
      lastT: T0 + count - 1,
      values,
      sensor_id: "t-1",
      sensor_type: "temperature" as const,
      unit: "°C",
      location: "Building A",
    }],
    count: null,
  };
}

Deno.test("changelogRecords() writes a tombstone for a value over 900 KiB, reports it with its size and keeps the others", () => {
  // The release before the sketch: a p95 window of 60,000 values made a 1,116,931-byte record, over
  // the broker's default max.message.bytes (1,048,588), and the transport would have refused it.
  const values = Array.from({ length: 60_000 }, (_, i) => 1000 + i / 7);
  const failed: string[] = [];
  const records = changelogRecords(
    "state",
    0,
    [
      { kind: "window", rule: "p", group: "big", value: oldWindowState(values, "h") },
      { kind: "deadman", rule: "silent", group: "good", value: timer(1) },
    ],
    null,
    (entry, err) => failed.push(`${entry.group}: ${err.message}`),
  );
  assert.deepEqual(records.map((r) => [r.key, r.value === null ? null : "json"]), [
    ["win\u0000p\u0000big", null],
    ["dm\u0000silent\u0000good", "json"],
  ]);
  assert.equal(failed.length, 1);
  assert.match(failed[0]!, /^big: \d+ bytes of JSON exceed the limit of 921600 bytes of a state record/);
});

const P95_RULE = `rules:
  - id: p
    sensor_type: temperature
    window: { type: tumbling, size: 1h }
    group_by: location
    condition: { ">": [{ var: p95 }, 1e12] }
    publish: true
    priority: low
`;

/** Closes the hourly window of "Building A" and gives its aggregate. */
function close(e: RuleEngine, out = emptyOutput()): Record<string, unknown> {
  e.onEvent(ev("t-1", 20), T0 + 3_600_000, out);
  assert.equal(out.aggregates.length, 1);
  return out.aggregates[0]! as Record<string, unknown>;
}

Deno.test("a p95 window past its exact values round-trips through the changelog: the restored window closes with the same p95", () => {
  const first = engine(P95_RULE);
  first.trackChanges();
  const out = emptyOutput();
  const values = Array.from({ length: 10_000 }, (_, i) => ((i * 7919) % 10_007) / 100 - 20);
  values.forEach((v, i) => first.onEvent(ev("t-1", v), T0 + i, out));
  const records = changelogRecords("state", 0, first.takeChanges(), null);
  const problems: string[] = [];
  const snapshot = parseSnapshot(compacted(records), (key, err) => problems.push(`${key}: ${err.message}`));
  assert.deepEqual(problems, []);
  const second = engine(P95_RULE);
  assert.ok(second.importState(snapshot.changes) > 0);
  const restored = close(second);
  const kept = close(first, out);
  assert.equal(restored.count, 10_000);
  assert.equal(restored.p95, kept.p95);
  assert.equal(restored.p95_estimated, true);
  const exact = percentile(values, 0.95);
  assert.ok(Math.abs((restored.p95 as number) - exact) <= 0.01 * Math.abs(exact));
});

Deno.test("an old changelog record with a plain values array still restores: exact p95, then bounded as values come", () => {
  const hash = (() => {
    const e = engine(P95_RULE);
    e.trackChanges();
    e.onEvent(ev("t-1", 1), T0, emptyOutput());
    return (e.takeChanges().find((c) => c.kind === "window")!.value as { rule_hash: string }).rule_hash;
  })();
  const values = Array.from({ length: 5000 }, (_, i) => ((i * 31) % 997) / 10);
  const old = new Map([["win\u0000p\u0000Building A", JSON.stringify(oldWindowState(values, hash))]]);
  const problems: string[] = [];
  const snapshot = parseSnapshot(old, (key, err) => problems.push(`${key}: ${err.message}`));
  assert.deepEqual(problems, []);

  // Closed as restored: every value is there, the answer is exact.
  const asIs = engine(P95_RULE);
  assert.equal(asIs.importState(snapshot.changes), 1);
  const exact = close(asIs);
  assert.equal(exact.p95, percentile(values, 0.95));
  assert.equal("p95_estimated" in exact, false);

  // One more value: past the cap, the window goes on in the sketch and its record is bounded.
  const more = engine(P95_RULE);
  more.trackChanges();
  more.importState(snapshot.changes);
  more.onEvent(ev("t-1", 50), T0 + 5000, emptyOutput());
  const record = changelogRecords("state", 0, more.takeChanges(), null).find((r) =>
    r.key!.startsWith("win")
  )!;
  assert.ok(record.value!.length < JSON.stringify(values).length / 4, `${record.value!.length} bytes`);
  const after = close(more);
  const all = [...values, 50];
  assert.ok(Math.abs((after.p95 as number) - percentile(all, 0.95)) <= 0.01 * percentile(all, 0.95));
  assert.equal(after.p95_estimated, true);
});

Deno.test("parseSnapshot() leaves out and reports a window whose p95 sketch is not one: keys out of order or counts missing", () => {
  const window = (sketch: unknown) => {
    const state = oldWindowState([1, 2, 3], "h");
    return JSON.stringify({ ...state, accs: [{ ...state.accs[0]!, values: null, sketch }] });
  };
  const problems: string[] = [];
  const snapshot = parseSnapshot(
    new Map([
      ["win\u0000p\u0000good", window({ alpha: 0.0099, keys: [-3, 0, 40000], counts: [1, 1, 1] })],
      ["win\u0000p\u0000unordered", window({ alpha: 0.0099, keys: [5, 4], counts: [1, 1] })],
      ["win\u0000p\u0000short", window({ alpha: 0.0099, keys: [4, 5], counts: [2] })],
      ["win\u0000p\u0000zero", window({ alpha: 0.0099, keys: [4], counts: [0] })],
    ]),
    (key, err) => problems.push(`${key.replaceAll("\u0000", "/")}: ${err.message}`),
  );
  assert.deepEqual(snapshot.changes.map((c) => c.group), ["good"]);
  assert.deepEqual(problems.map((p) => p.replace(/: Not a window state: field "accs\.0\.sketch.*/, "")), [
    "win/p/unordered",
    "win/p/short",
    "win/p/zero",
  ]);
});
