/** The state changelog's record formats, without a broker (the reader against one: tests/integration/state/). */
import assert from "node:assert/strict";
import type { StateChange } from "../../src/rules/changes.ts";
import {
  changelogRecords,
  parseSnapshot,
  positionRecord,
  resumeOffset,
  stateAtRecord,
} from "../../src/state/format.ts";

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
