/**
 * Record encoding, kafkajs against @platformatic/kafka: one partition's record batch of a
 * transaction, as the exactly-once engine sends it per 1,000 events (~350 records: changelog state,
 * alerts); kafkajs both as released and as the service runs it, its varint writers mended
 * (src/transport/encoder.ts). Run with `deno bench --allow-env --allow-read
 * scripts/bench/encoding_bench.ts` (the read is @platformatic/kafka's WebAssembly); not in
 * `tests/bench/` because kafkajs reads NODE_ENV, which the micro benchmarks are not allowed.
 *
 * Measured on the 2-core machine (loaded, two runs): kafkajs 5.8 / 9.0 ms a batch on average (fastest
 * 2.2 / 4.8 ms), @platformatic/kafka 1.1 / 1.8 ms (fastest 0.54 / 1.2 ms), 5.1x faster both times:
 * ~6 µs a record against ~1.5 µs. With its varint writers mended (two runs on 2026-12-01, machine
 * shared with two test runs): 6.9 / 7.1 ms as released, 2.3 / 1.6 ms mended (3.0x / 4.5x faster),
 * @platformatic/kafka 0.78 / 1.8 ms.
 */
import { Buffer } from "node:buffer";
import { createRecordsBatch, NumericMap } from "@platformatic/kafka";
// kafkajs's own encoders, as its producer calls them for a Produce request (v3 and later).
import kafkajsRecord from "kafkajs/src/protocol/recordBatch/record/v0/index.js";
import kafkajsBatch from "kafkajs/src/protocol/recordBatch/v0/index.js";
import Encoder from "kafkajs/src/protocol/encoder.js";
import { KAFKAJS_ENCODER } from "../../src/transport/encoder.ts";
import { chunkRecords } from "../../src/transport/kafka.ts";

const RECORDS = 350;
const strings = Array.from({ length: RECORDS }, (_, i) => ({
  key: `win\u0000co2-average-high\u0000co2-${String(i).padStart(5, "0")}`,
  value: JSON.stringify({
    rule_hash: "fc3fb391af004cbb",
    watermark: 1796092034935 + i,
    accs: [{
      start: 1796091900000,
      end: 1796092200000,
      count: 7,
      sum: 2612.06 + i,
      min: 302.76,
      max: 487.09,
    }],
    sensor_id: `co2-${i}`,
    unit: "ppm",
    location: "Building A, Floor 1",
  }),
}));

/** One batch as kafkajs's producer encodes it for a Produce request. */
async function kafkajsBatchOf(): Promise<void> {
  const now = Date.now();
  const records = strings.map((m, i) =>
    kafkajsRecord({ key: m.key, value: m.value, offsetDelta: i, timestampDelta: 0 })
  );
  const batch = await kafkajsBatch.RecordBatch({
    records,
    firstTimestamp: now,
    maxTimestamp: now,
    producerId: 1,
    producerEpoch: 0,
    firstSequence: 0,
    transactional: true,
    lastOffsetDelta: records.length - 1,
  });
  if (batch.size() === 0) throw new Error("empty");
}

const E = Encoder as unknown as { prototype: Record<string, unknown>; sizeOfVarLong: unknown };
const mended = {
  writeUVarInt: E.prototype.writeUVarInt,
  writeVarLong: E.prototype.writeVarLong,
  sizeOfVarLong: E.sizeOfVarLong,
};
/** `fn` with kafkajs's functions as released. */
async function asReleased(fn: () => Promise<void>): Promise<void> {
  E.prototype.writeUVarInt = KAFKAJS_ENCODER.writeUVarInt;
  E.prototype.writeVarLong = KAFKAJS_ENCODER.writeVarLong;
  E.sizeOfVarLong = KAFKAJS_ENCODER.sizeOfVarLong;
  try {
    await fn();
  } finally {
    E.prototype.writeUVarInt = mended.writeUVarInt;
    E.prototype.writeVarLong = mended.writeVarLong;
    E.sizeOfVarLong = mended.sizeOfVarLong;
  }
}

Deno.bench(
  "kafkajs as released: Record + RecordBatch",
  { group: "encode", baseline: true },
  () => asReleased(kafkajsBatchOf),
);

Deno.bench("kafkajs as the service runs it (src/transport/encoder.ts)", { group: "encode" }, kafkajsBatchOf);

Deno.bench("@platformatic/kafka: createRecordsBatch", { group: "encode" }, () => {
  const messages = strings.map((m) => ({
    key: Buffer.from(m.key),
    value: Buffer.from(m.value),
    topic: "state",
    partition: 0,
  }));
  const batch = createRecordsBatch(messages, {
    transactionalId: "g-t-0",
    compression: "none",
    producerId: 1n,
    producerEpoch: 0,
    sequences: new NumericMap(),
    partitionLeaderEpoch: 0,
  });
  if (batch.length === 0) throw new Error("empty");
});

// Cutting the same records into produce requests, by UTF-16 code units (as chunkRecords counted before
// it counted bytes) and by UTF-8 bytes (`recordBytes`): what counting bytes adds to a batch's encoding.
const outRecords = strings.map((m) => ({ topic: "state", key: m.key, value: m.value }));

/** The count chunkRecords made before it counted bytes: string lengths. */
function chunkByLength(records: readonly { key: string | null; value: string | null }[]): number {
  let chunks = 0;
  let size = 0;
  for (const r of records) {
    const n = (r.key?.length ?? 0) + (r.value?.length ?? 0) + 64;
    if (size > 0 && size + n > 512 * 1024) {
      chunks++;
      size = 0;
    }
    size += n;
  }
  return chunks + 1;
}

Deno.bench("chunkRecords by UTF-16 code units (before)", { group: "chunk", baseline: true }, () => {
  if (chunkByLength(outRecords) !== 1) throw new Error("not one chunk");
});

Deno.bench("chunkRecords by UTF-8 bytes (Buffer.byteLength)", { group: "chunk" }, () => {
  if (chunkRecords(outRecords).length !== 1) throw new Error("not one chunk");
});
