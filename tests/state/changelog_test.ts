/** The changelog's records, without a broker (the reader against one: tests/integration/state/). */
import assert from "node:assert/strict";
import { changelogRecords } from "../../src/state/changelog.ts";

Deno.test("changelogRecords() writes a tombstone for an entry it cannot serialise, reports it and keeps the others", () => {
  const cyclic: Record<string, unknown> = { alert: { event: {} } };
  (cyclic.alert as { event: Record<string, unknown> }).event.self = cyclic;
  const failed: string[] = [];
  const records = changelogRecords(
    "state",
    2,
    [
      { kind: "ep", rule: "r", group: "bad", value: cyclic },
      { kind: "dm", rule: "silent", group: "good", value: { last: 1 } },
    ],
    null,
    (entry, err) => failed.push(`${entry.group}: ${err.message}`),
  );
  assert.deepEqual(records.map((r) => [r.key, r.value]), [
    ["ep\u0000r\u0000bad", null],
    ["dm\u0000silent\u0000good", '{"last":1}'],
  ]);
  assert.equal(failed.length, 1);
  assert.match(failed[0]!, /^bad: Converting circular structure to JSON/);
});
