import assert from "node:assert/strict";
import fc from "fast-check";
import Encoder from "kafkajs/src/protocol/encoder.js";
import Long from "kafkajs/src/utils/long.js";
import kafkajsRecord from "kafkajs/src/protocol/recordBatch/record/v0/index.js";
import RecordBatch from "kafkajs/src/protocol/recordBatch/v0/index.js";
import { KAFKAJS_ENCODER } from "../../src/transport/encoder.ts";
// The module that builds every Kafka client: importing it must be enough to mend the encoder.
import "../../src/transport/kafka.ts";

type Enc = {
  buffer: Uint8Array;
  writeUVarInt(v: number): Enc;
  writeVarInt(v: number): Enc;
  writeVarLong(v: unknown): Enc;
};
const E = Encoder as unknown as {
  new (size?: number): Enc;
  prototype: Record<string, unknown>;
  sizeOfVarLong(v: unknown): number;
};
const mended = {
  writeUVarInt: E.prototype.writeUVarInt,
  writeVarLong: E.prototype.writeVarLong,
  sizeOfVarLong: E.sizeOfVarLong,
};

/** Runs `fn` with kafkajs's own functions back in place. */
async function asKafkajs<T>(fn: () => T | Promise<T>): Promise<T> {
  E.prototype.writeUVarInt = KAFKAJS_ENCODER.writeUVarInt;
  E.prototype.writeVarLong = KAFKAJS_ENCODER.writeVarLong;
  E.sizeOfVarLong = KAFKAJS_ENCODER.sizeOfVarLong;
  try {
    return await fn();
  } finally {
    Object.assign(E.prototype, { writeUVarInt: mended.writeUVarInt, writeVarLong: mended.writeVarLong });
    E.sizeOfVarLong = mended.sizeOfVarLong;
  }
}

const bytes = (write: (e: Enc) => void, size?: number) => {
  // A small buffer too, so that writing a varint has to grow it.
  const e = new E(size);
  write(e);
  return [...e.buffer];
};

const EDGES = [
  0,
  1,
  -1,
  63,
  64,
  -64,
  -65,
  127,
  128,
  16383,
  16384,
  2 ** 28 - 1,
  2 ** 28,
  2 ** 30 - 1,
  2 ** 30,
  -(2 ** 30),
  -(2 ** 30) - 1,
  2 ** 31 - 1,
  -(2 ** 31),
  2 ** 32 - 1,
  2 ** 40,
  -(2 ** 40),
  Number.MAX_SAFE_INTEGER,
  Number.MIN_SAFE_INTEGER,
];

Deno.test("the mended encoder writes the varints, varlongs and their sizes kafkajs writes, to the byte", async () => {
  assert.notEqual(
    mended.writeUVarInt,
    KAFKAJS_ENCODER.writeUVarInt,
    "importing the client mends the encoder",
  );
  const check = async (value: number) => {
    for (const size of [1, 511]) {
      for (const write of [(e: Enc) => e.writeVarInt(value), (e: Enc) => e.writeVarLong(value)]) {
        const prefix = (e: Enc) => {
          e.writeUVarInt(300);
          write(e);
        };
        assert.deepEqual(bytes(prefix, size), await asKafkajs(() => bytes(prefix, size)), String(value));
      }
    }
    if (value >= 0 && value <= 0xffffffff) {
      assert.deepEqual(
        bytes((e) => e.writeUVarInt(value)),
        await asKafkajs(() => bytes((e) => e.writeUVarInt(value))),
      );
    }
    assert.equal(E.sizeOfVarLong(value), await asKafkajs(() => E.sizeOfVarLong(value)), String(value));
  };
  for (const v of EDGES) await check(v);
  // Longs and numeric strings are kafkajs's own way still.
  for (const v of [Long.fromNumber(2 ** 50), Long.fromNumber(-5), "12345"]) {
    assert.deepEqual(bytes((e) => e.writeVarLong(v)), await asKafkajs(() => bytes((e) => e.writeVarLong(v))));
    assert.equal(E.sizeOfVarLong(v), await asKafkajs(() => E.sizeOfVarLong(v)));
  }
  await fc.assert(
    fc.asyncProperty(
      fc.oneof(fc.integer(), fc.maxSafeInteger(), fc.integer({ min: -(2 ** 31), max: 2 ** 31 })),
      check,
    ),
    { numRuns: 2000 },
  );
});

interface RecordSpec {
  key: string | null;
  value: string | null;
  timestampDelta: number;
  headers: Record<string, string>;
}

Deno.test("a record batch encoded with the mended encoder is kafkajs's, to the byte", async () => {
  const record = fc.record({
    key: fc.option(fc.string({ maxLength: 300 }), { nil: null }),
    value: fc.option(fc.string({ maxLength: 3000 }), { nil: null }),
    timestampDelta: fc.oneof(
      fc.integer({ min: 0, max: 10_000 }),
      fc.integer({ min: -(2 ** 31), max: 2 ** 40 }),
    ),
    headers: fc.dictionary(fc.string({ minLength: 1, maxLength: 10 }), fc.string({ maxLength: 20 }), {
      maxKeys: 3,
    }),
  });
  const encode = async (records: RecordSpec[]) => {
    const batch = await RecordBatch.RecordBatch({
      records: records.map((r, i) => kafkajsRecord({ ...r, offsetDelta: i })),
      firstTimestamp: 1796092034935,
      maxTimestamp: 1796092034935,
      producerId: 7,
      producerEpoch: 3,
      firstSequence: 11,
      transactional: true,
      lastOffsetDelta: records.length - 1,
    });
    return [...batch.buffer];
  };
  await fc.assert(
    fc.asyncProperty(fc.array(record, { minLength: 1, maxLength: 20 }), async (records) => {
      assert.deepEqual(await encode(records), await asKafkajs(() => encode(records)));
    }),
    { numRuns: 300 },
  );
});
