import { Buffer } from "node:buffer";
import type { DlqRecord, DlqStage } from "../contract/schemas.ts";
import type { OutRecord, ShrinkRecord } from "../transport/output.ts";

/**
 * The DLQ keeps at most this many bytes (UTF-8) of an original value, so a huge message still fits on
 * the topic. Bytes, not characters: 64K characters of invalid UTF-8, each byte replaced by U+FFFD
 * (3 bytes), made DLQ records of 196,896 bytes, too large for the broker seven in a request.
 */
export const MAX_ORIGINAL_VALUE_BYTES = 64 * 1024;

/**
 * The DLQ keeps at most this much of an original key: a Kafka key may be as large as the broker
 * allows (a 600 KB key, kept twice as the DLQ record's key and `original_key`, would exceed the
 * broker's 1 MiB limit and the record could never be published).
 */
export const MAX_ORIGINAL_KEY_CHARS = 1024;

const lenient = new TextDecoder("utf-8", { fatal: false });
const encoder = new TextEncoder();
/** Where `cutUtf8` encodes into: one buffer for the process, the cut is synchronous. */
const cutBuffer = new Uint8Array(MAX_ORIGINAL_VALUE_BYTES);

/**
 * The longest beginning of `text` whose UTF-8 is at most MAX_ORIGINAL_VALUE_BYTES, whole characters
 * only (`encodeInto` writes no part of a character, and a surrogate pair is one). Null when the
 * whole text fits.
 */
function cutUtf8(text: string): string | null {
  // A UTF-16 code unit is at most 3 bytes: a short text fits without being measured.
  if (text.length * 3 <= MAX_ORIGINAL_VALUE_BYTES) return null;
  const { read } = encoder.encodeInto(text, cutBuffer);
  return read < text.length ? text.slice(0, read) : null;
}

export interface DlqInput {
  topic: string;
  key: string | null;
  value: Uint8Array | string | null;
  partition: number | null;
  offset: string | null;
  /** The original value's size in bytes when `value` is only its beginning (its source cut it). */
  size?: number;
  stage: DlqStage;
  error: string;
  retryCount?: number;
  extra?: Record<string, unknown>;
}

/** A DLQ record per the wire contract; invalid UTF-8 is replaced, long values are cut and flagged. */
export function buildDlqRecord(input: DlqInput): DlqRecord {
  let value: string | null;
  let originalSize: number;
  if (input.value === null) {
    value = null;
    originalSize = 0;
  } else if (typeof input.value === "string") {
    value = input.value;
    originalSize = Buffer.byteLength(value, "utf8");
  } else {
    // Only the beginning is decoded: each byte becomes at least one byte of UTF-8, so what follows
    // the first MAX_ORIGINAL_VALUE_BYTES (and the 3 bytes of a sequence cut there) is cut anyway.
    value = lenient.decode(input.value.subarray(0, MAX_ORIGINAL_VALUE_BYTES + 4));
    originalSize = input.value.byteLength;
  }
  let truncated = false;
  if (input.size !== undefined) originalSize = input.size;
  const cut = value === null ? null : cutUtf8(value);
  if (cut !== null) {
    value = cut;
    truncated = true;
  }
  if (input.size !== undefined) truncated = true;
  const keyTruncated = input.key !== null && input.key.length > MAX_ORIGINAL_KEY_CHARS;
  return {
    original_topic: input.topic,
    original_key: keyTruncated ? input.key!.slice(0, MAX_ORIGINAL_KEY_CHARS) : input.key,
    original_value: value,
    error: input.error,
    retry_count: input.retryCount ?? 0,
    original_partition: input.partition,
    original_offset: input.offset,
    stage: input.stage,
    failed_at: new Date().toISOString(),
    ...(truncated ? { original_value_truncated: true, original_size: originalSize } : {}),
    ...(keyTruncated ? { original_key_truncated: true } : {}),
    ...input.extra,
  };
}

/**
 * What stands for a record the broker refused for its size (see `ShrinkRecord`): a DLQ record of
 * `dlqTopic` without its original value (its size and reason kept), or for any other record a DLQ
 * record of its failure, `stage: alert`. Null for a DLQ record that has no original value left to drop.
 */
export function shrinkForDlq(dlqTopic: string): ShrinkRecord {
  return (record: OutRecord, problem: string): OutRecord | null => {
    const error = `The broker refused the record as too large (${problem})`;
    if (record.topic !== dlqTopic) {
      const dlq = buildDlqRecord({
        topic: record.topic,
        key: record.key,
        value: record.value,
        partition: record.partition ?? null,
        offset: null,
        stage: "alert",
        error,
      });
      return { topic: dlqTopic, key: dlq.original_key, value: JSON.stringify(dlq) };
    }
    let dlq: Record<string, unknown>;
    try {
      dlq = JSON.parse(record.value ?? "null");
    } catch {
      return null;
    }
    if (typeof dlq !== "object" || dlq === null || typeof dlq.original_value !== "string") return null;
    const size = typeof dlq.original_size === "number"
      ? dlq.original_size
      : Buffer.byteLength(dlq.original_value, "utf8");
    return {
      ...record,
      value: JSON.stringify({
        ...dlq,
        original_value: null,
        original_value_truncated: true,
        original_size: size,
        original_value_dropped: error,
      }),
    };
  };
}
