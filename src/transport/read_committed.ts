/**
 * kafkajs 2.2.4 shows read_committed consumers records of aborted transactions. Its filter
 * (`src/consumer/filterAbortedMessages.js`) walks a fetch's records with the broker's list of
 * aborted transactions and assumes the list is sorted by first offset, and that at most one aborted
 * transaction starts at each record. The broker sends the list in the order the transactions ended
 * (its transaction index), and two transactions that were open side by side, as the per-partition
 * producers of one crashed engine worker are, overlap: the records of the one listed second were
 * shown, and the test reading the alerts topic (like the notifier stage and the changelog's restore,
 * all kafkajs consumers) counted 100 alerts of a crashed worker's aborted transaction as published
 * (in 1 of 8 runs of tests/integration/workers/engine_workers_test.ts; a Java read_committed
 * consumer saw none of them).
 *
 * The fix rewrites the list as each fetch response is parsed, before kafkajs filters it: one entry
 * per aborted run of records, at the offset of its first record, in record order. kafkajs's filter
 * then starts each aborted run exactly where it begins, and the offsets it reports (a batch's last
 * offset, past aborted records) stay its own.
 *
 * @module
 */
import { createRequire } from "node:module";

/** An entry of a fetch response's `aborted_transactions`, as kafkajs decodes it. */
export interface AbortedTransaction {
  producerId: string;
  firstOffset: string;
}

/** A record of a fetch response, as kafkajs decodes it (the fields the filter reads). */
export interface FetchedRecord {
  offset: string;
  key: Uint8Array | null;
  isControlRecord?: boolean;
  batchContext?: { producerId: string; inTransaction: boolean };
}

/**
 * The aborted transactions of one partition's fetched `records`, one entry per run of aborted
 * records at its first record, in record order: the list kafkajs's filter reads right. A record is
 * aborted as the Java consumer decides it: it is transactional, and its producer's aborted
 * transaction started at or before it (the broker's `aborted`, in any order) and has not met its
 * abort marker yet.
 */
export function exactAbortedTransactions(
  records: readonly FetchedRecord[],
  aborted: readonly AbortedTransaction[],
): AbortedTransaction[] {
  if (aborted.length === 0) return [];
  const pending = [...aborted].sort((a, b) => compare(BigInt(a.firstOffset), BigInt(b.firstOffset)));
  /** Producers inside an aborted transaction at the current record. */
  const open = new Set<string>();
  /** Of those, the ones whose run has its entry already. */
  const listed = new Set<string>();
  const out: AbortedTransaction[] = [];
  for (const record of records) {
    const offset = BigInt(record.offset);
    while (pending.length > 0 && BigInt(pending[0]!.firstOffset) <= offset) {
      open.add(String(pending.shift()!.producerId));
    }
    const producerId = String(record.batchContext?.producerId);
    if (record.isControlRecord) {
      if (isAbortMarker(record.key)) {
        open.delete(producerId);
        listed.delete(producerId);
      }
      continue;
    }
    if (record.batchContext?.inTransaction && open.has(producerId) && !listed.has(producerId)) {
      listed.add(producerId);
      out.push({ producerId, firstOffset: record.offset });
    }
  }
  return out;
}

let installed = false;

/**
 * Makes kafkajs's read_committed consumers skip every aborted record (see the module's doc): the
 * Fetch responses' parsers, which kafkajs looks up per response, rewrite each partition's list of
 * aborted transactions. Once per process (each worker thread loads kafkajs anew); later calls do
 * nothing.
 */
export function fixReadCommitted(): void {
  if (installed) return;
  installed = true;
  const require = createRequire(import.meta.url);
  // Versions 4 and up carry aborted transactions (kafkajs 2.2.4 speaks up to 11).
  for (let version = 4; version <= 11; version++) {
    const response = require(`kafkajs/src/protocol/requests/fetch/v${version}/response.js`) as {
      parse: (data: FetchResponse) => Promise<FetchResponse>;
    };
    const parse = response.parse;
    if ((parse as { exact?: true }).exact) continue;
    const exact = async (data: FetchResponse) => {
      const parsed = await parse(data);
      for (const topic of parsed.responses ?? []) {
        for (const p of topic.partitions ?? []) {
          if (p.abortedTransactions?.length) {
            p.abortedTransactions = exactAbortedTransactions(p.messages ?? [], p.abortedTransactions);
          }
        }
      }
      return parsed;
    };
    response.parse = Object.assign(exact, { exact: true as const });
  }
}

interface FetchResponse {
  responses?: {
    partitions?: { abortedTransactions?: AbortedTransaction[]; messages?: FetchedRecord[] }[];
  }[];
}

/** A control record's key: version 0, type 0 (abort); type 1 is a commit. */
function isAbortMarker(key: Uint8Array | null): boolean {
  return key !== null && key.length === 4 && key.every((b) => b === 0);
}

function compare(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
