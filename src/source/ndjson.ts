import type { InputRecord } from "../contract/records.ts";

/** A line longer than this is cut: the decoder's message size limit (DEFAULT_MAX_EVENT_BYTES). */
export const DEFAULT_MAX_LINE_BYTES = 256 * 1024;

/**
 * Reads NDJSON (a file, or `-` for stdin) as batches of records. Lines are split on raw bytes, so
 * an invalid UTF-8 line reaches the decoder as bytes and is dead-lettered like it would be from Kafka.
 * The record's offset is its line number.
 *
 * A line longer than `maxLineBytes` is kept only up to that many bytes and yielded with its real
 * `size`, for the pipeline to dead-letter as too large; the reader goes on with the next line. The
 * pieces of a line are joined once, at its end: joining at every read made a 100 MB line quadratic
 * (not done after 180 s; a 20 MB one took 12 s).
 */
export async function* readNdjson(
  path: string,
  batchSize = 500,
  maxLineBytes = DEFAULT_MAX_LINE_BYTES,
): AsyncGenerator<InputRecord[]> {
  const file = path === "-" ? null : await Deno.open(path, { read: true });
  const stream = file?.readable ?? Deno.stdin.readable;
  const topic = path === "-" ? "stdin" : `file:${path}`;
  /** The kept pieces of the current line (at most `maxLineBytes` in all) and its real size. */
  const pieces: Uint8Array[] = [];
  let kept = 0;
  let size = 0;
  let line = 0;
  let batch: InputRecord[] = [];
  const keep = (bytes: Uint8Array) => {
    size += bytes.length;
    if (kept >= maxLineBytes || bytes.length === 0) return;
    // A copy: a slice of the stream's chunk would hold the whole chunk, and the stream may reuse it.
    const piece = bytes.slice(0, maxLineBytes - kept);
    pieces.push(piece);
    kept += piece.length;
  };
  const emit = (tail: Uint8Array) => {
    line++;
    let bytes: Uint8Array;
    let total: number;
    const inOneRead = pieces.length === 0;
    if (inOneRead) {
      // The common case: the whole line is in one read.
      total = tail.length;
      bytes = tail.length > maxLineBytes ? tail.subarray(0, maxLineBytes) : tail;
    } else {
      keep(tail);
      total = size;
      bytes = _join(pieces, kept);
      pieces.length = 0;
      kept = 0;
    }
    size = 0;
    const whole = total === bytes.length;
    let end = bytes.length;
    if (whole && end > 0 && bytes[end - 1] === 0x0d) end--;
    // Blank lines are separators, not messages.
    if (whole && _blank(bytes, end)) return;
    batch.push({
      topic,
      partition: null,
      offset: String(line),
      key: null,
      // A copy of the read's chunk, which the stream may reuse; a joined line is already one.
      value: inOneRead ? bytes.slice(0, end) : bytes.subarray(0, end),
      ...(whole ? {} : { size: total }),
    });
  };
  for await (const chunk of stream) {
    let start = 0;
    for (let i = chunk.indexOf(0x0a); i !== -1; i = chunk.indexOf(0x0a, start)) {
      emit(chunk.subarray(start, i));
      start = i + 1;
    }
    keep(chunk.subarray(start));
    if (batch.length >= batchSize) {
      yield batch;
      batch = [];
    }
  }
  if (size > 0) emit(new Uint8Array(0));
  if (batch.length > 0) yield batch;
}

function _join(pieces: readonly Uint8Array[], length: number): Uint8Array {
  if (pieces.length === 1) return pieces[0]!;
  const out = new Uint8Array(length);
  let at = 0;
  for (const p of pieces) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function _blank(bytes: Uint8Array, end: number): boolean {
  for (let i = 0; i < end; i++) if (bytes[i] !== 0x20 && bytes[i] !== 0x09) return false;
  return true;
}

/**
 * Why `--input` cannot be read, in one line, or null. Checked before the service starts, so a typo
 * or a file outside what `deno task start` may read (only the project directory) is said at once,
 * with the way that works.
 */
export async function inputProblem(path: string): Promise<string | null> {
  if (path === "-") return null;
  const { state } = await Deno.permissions.query({ name: "read", path });
  if (state !== "granted") {
    return `Cannot read --input "${path}": deno task start may read only the project directory; ` +
      `pipe the file in instead: deno task start --input - < ${_shellQuote(path)}`;
  }
  try {
    await Deno.stat(path);
  } catch (err) {
    return `Cannot read --input "${path}": ${
      err instanceof Deno.errors.NotFound ? "no such file" : (err as Error).message
    }`;
  }
  return null;
}

function _shellQuote(s: string): string {
  return /^[\w./~+@%:=-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`;
}
