/**
 * kafkajs 2.2.4's record encoding without an allocation per variable-length integer. Its encoder
 * writes each varint into a new array, then a new `Buffer` of it, then copies that; a record has
 * five or six (its length, offset and timestamp deltas, key and value lengths, header count), and a
 * varlong (the timestamp delta) goes through `Long` arithmetic besides. Under Deno a `Buffer` is a
 * class of the Node compatibility layer whose construction showed as 32% of the encoding's profile.
 * Here the bytes go straight into the encoder's buffer, and a varlong that fits in 31 bits, the
 * timestamp delta of every record the service writes, is written as the varint it is.
 *
 * The same bytes as kafkajs's (tests/transport/encoder_test.ts compares them with the functions
 * replaced, `KAFKAJS_ENCODER`). One partition's batch of 350 changelog records, as exactly-once sends
 * per ~1,000 events (`deno bench --allow-env --allow-read scripts/bench/encoding_bench.ts`, 2-core
 * machine, shared): 6.9 / 7.1 ms as released, 2.3 / 1.6 ms mended (two runs; alone in a loop, 6.3
 * against 2.6 µs a record). What remains is kafkajs's CRC32C, a byte at a time in JavaScript (27% of
 * the mended encoding's profile), and a 512-byte `Buffer` per record (21%).
 *
 * @module
 */
import Encoder from "kafkajs/src/protocol/encoder.js";

interface EncoderState {
  buf: Uint8Array;
  offset: number;
  ensureAvailable(length: number): void;
  writeUVarInt(value: number): EncoderState;
}

interface EncoderClass {
  prototype: {
    writeUVarInt(this: EncoderState, value: number): EncoderState;
    writeVarLong(this: EncoderState, value: unknown): EncoderState;
  };
  sizeOfVarInt(value: number): number;
  sizeOfVarLong(value: unknown): number;
}

const E = Encoder as unknown as EncoderClass;

/** kafkajs's own functions, for the differential test and the bench. */
export const KAFKAJS_ENCODER = {
  writeUVarInt: E.prototype.writeUVarInt,
  writeVarLong: E.prototype.writeVarLong,
  sizeOfVarLong: E.sizeOfVarLong,
} as const;

/** A varlong written as a varint: zigzag in 32 bits is zigzag in 64 for these, and fits unsigned. */
const fitsVarInt = (value: unknown): value is number =>
  typeof value === "number" && Number.isInteger(value) && value >= -0x40000000 && value < 0x40000000;

// The loop is kafkajs's (LEB128, 7 bits a byte, low first), counted first so the buffer grows once.
E.prototype.writeUVarInt = function (value: number): EncoderState {
  let size = 1;
  for (let v = value; (v & 0xffffff80) !== 0; v >>>= 7) size++;
  this.ensureAvailable(size);
  const buf = this.buf;
  let at = this.offset;
  while ((value & 0xffffff80) !== 0) {
    buf[at++] = (value & 0x7f) | 0x80;
    value >>>= 7;
  }
  buf[at++] = value & 0x7f;
  this.offset = at;
  return this;
};

E.prototype.writeVarLong = function (value: unknown): EncoderState {
  if (!fitsVarInt(value)) return KAFKAJS_ENCODER.writeVarLong.call(this, value);
  return this.writeUVarInt(value >= 0 ? value * 2 : -value * 2 - 1);
};

E.sizeOfVarLong = function (value: unknown): number {
  return fitsVarInt(value) ? E.sizeOfVarInt(value) : KAFKAJS_ENCODER.sizeOfVarLong.call(E, value);
};
