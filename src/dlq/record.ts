import type { DlqRecord, DlqStage } from "../contract/schemas.ts";

/** The DLQ keeps at most this much of an original value, so a huge message still fits on the topic. */
export const MAX_ORIGINAL_VALUE_CHARS = 64 * 1024;

/**
 * The DLQ keeps at most this much of an original key: a Kafka key may be as large as the broker
 * allows (a 600 KB key, kept twice as the DLQ record's key and `original_key`, would exceed the
 * broker's 1 MiB limit and the record could never be published).
 */
export const MAX_ORIGINAL_KEY_CHARS = 1024;

const lenient = new TextDecoder("utf-8", { fatal: false });

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
  let value: string | null = input.value === null
    ? null
    : typeof input.value === "string"
    ? input.value
    : lenient.decode(input.value);
  let truncated = false;
  const originalSize = input.size ??
    (value === null ? 0 : typeof input.value === "string" ? value.length : input.value!.byteLength);
  if (value !== null && value.length > MAX_ORIGINAL_VALUE_CHARS) {
    value = value.slice(0, MAX_ORIGINAL_VALUE_CHARS);
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
