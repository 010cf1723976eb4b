import type { InputRecord } from "../pipeline.ts";

/**
 * Reads NDJSON (a file, or `-` for stdin) as batches of records. Lines are split on raw bytes, so
 * an invalid UTF-8 line reaches the decoder as bytes and is dead-lettered like it would be from Kafka.
 * The record's offset is its line number.
 */
export async function* readNdjson(path: string, batchSize = 500): AsyncGenerator<InputRecord[]> {
  const file = path === "-" ? null : await Deno.open(path, { read: true });
  const stream = file?.readable ?? Deno.stdin.readable;
  const topic = path === "-" ? "stdin" : `file:${path}`;
  let pending = new Uint8Array(0);
  let line = 0;
  let batch: InputRecord[] = [];
  const emit = (bytes: Uint8Array) => {
    line++;
    let end = bytes.length;
    if (end > 0 && bytes[end - 1] === 0x0d) end--;
    // Blank lines are separators, not messages.
    if (bytes.subarray(0, end).every((b) => b === 0x20 || b === 0x09)) return;
    batch.push({ topic, partition: null, offset: String(line), key: null, value: bytes.slice(0, end) });
  };
  for await (const chunk of stream) {
    const data = pending.length === 0 ? chunk : concat(pending, chunk);
    let start = 0;
    for (let i = data.indexOf(0x0a); i !== -1; i = data.indexOf(0x0a, start)) {
      emit(data.subarray(start, i));
      start = i + 1;
    }
    pending = data.slice(start);
    if (batch.length >= batchSize) {
      yield batch;
      batch = [];
    }
  }
  if (pending.length > 0) emit(pending);
  if (batch.length > 0) yield batch;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}
