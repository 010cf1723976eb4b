/**
 * The hashes of the service, one per job. FNV-1a 64 (`@sindresorhus/fnv1a`) fingerprints short
 * texts synchronously (rule definitions); SHA-256 (WebCrypto) digests content of any size, where an
 * accidental collision must not happen (file contents, a group's delivery id). Alert ids keep their
 * own hash (src/alerts/alert_id.ts): see there why.
 *
 * @module
 */
import fnv1a from "@sindresorhus/fnv1a";

/** FNV-1a 64 of the text's UTF-8 bytes, as 16 hex digits. */
export function fnv1a64(text: string): string {
  return fnv1a(text, { size: 64 }).toString(16).padStart(16, "0");
}

/** SHA-256 of the bytes (or of the text's UTF-8 bytes), as 64 hex digits. */
export async function sha256Hex(data: Uint8Array | string): Promise<string> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}
