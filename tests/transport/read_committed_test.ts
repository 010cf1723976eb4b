import assert from "node:assert/strict";
import { createRequire } from "node:module";
import {
  type AbortedTransaction,
  exactAbortedTransactions,
  type FetchedRecord,
} from "../../src/transport/read_committed.ts";

/** kafkajs's own filter, which reads the list the fix gives it. */
const filterAbortedMessages = createRequire(import.meta.url)(
  "kafkajs/src/consumer/filterAbortedMessages.js",
) as (args: { messages: FetchedRecord[]; abortedTransactions: AbortedTransaction[] }) => FetchedRecord[];

const ABORT = new Uint8Array([0, 0, 0, 0]);
const COMMIT = new Uint8Array([0, 0, 0, 1]);

function data(offset: number, producerId: string): FetchedRecord {
  return { offset: String(offset), key: null, batchContext: { producerId, inTransaction: true } };
}
function marker(offset: number, producerId: string, key: Uint8Array): FetchedRecord {
  return {
    offset: String(offset),
    key,
    isControlRecord: true,
    batchContext: { producerId, inTransaction: true },
  };
}

/** The data records kafkajs shows with the list the fix makes of the broker's. */
function shown(records: FetchedRecord[], aborted: AbortedTransaction[]): string[] {
  return filterAbortedMessages({
    messages: records,
    abortedTransactions: exactAbortedTransactions(records, aborted),
  })
    .filter((r) => !r.isControlRecord).map((r) => r.offset);
}

Deno.test("exactAbortedTransactions() hides two interleaved aborted transactions listed in the order they ended", () => {
  // Producers 7 and 8 (two partitions' transactions of a crashed worker) write side by side; 8's
  // transaction is fenced first, so the broker lists it first although 7's started earlier.
  const records = [
    data(10, "7"),
    data(11, "8"),
    data(12, "7"),
    data(13, "8"),
    data(14, "9"),
    marker(15, "9", COMMIT),
    marker(16, "8", ABORT),
    marker(17, "7", ABORT),
  ];
  const broker = [{ producerId: "8", firstOffset: "11" }, { producerId: "7", firstOffset: "10" }];
  assert.deepEqual(shown(records, broker), ["14"]);
});

Deno.test("exactAbortedTransactions() hides aborted transactions that both started before the fetched records", () => {
  // The fetch starts inside both transactions: two start at or before its first record.
  const records = [
    data(20, "8"),
    data(21, "7"),
    data(22, "6"),
    marker(23, "7", ABORT),
    marker(24, "8", ABORT),
  ];
  const broker = [{ producerId: "7", firstOffset: "3" }, { producerId: "8", firstOffset: "5" }];
  assert.deepEqual(shown(records, broker), ["22"]);
});

Deno.test("exactAbortedTransactions() shows a producer's committed transaction after its aborted one", () => {
  const records = [data(0, "7"), marker(1, "7", ABORT), data(2, "7"), marker(3, "7", COMMIT), data(4, "5")];
  assert.deepEqual(shown(records, [{ producerId: "7", firstOffset: "0" }]), ["2", "4"]);
  assert.deepEqual(exactAbortedTransactions(records, []), []);
});
