/**
 * The hashes of the service, one per job. FNV-1a 64 (`@sindresorhus/fnv1a`) fingerprints short
 * texts (rule definitions); SHA-256 (`node:crypto`) digests content of any size, where an accidental
 * collision must not happen (file contents, a group's delivery id). Both are synchronous: WebCrypto's
 * digest resolves on another thread, a hop in a group's delivery that tests in virtual time could not
 * wait for on a loaded machine (the group id not ready 5 ms after its timer fired). Alert ids keep their
 * own hash (src/alerts/alert_id.ts): see there why.
 *
 * @module
 */
import { createHash } from "node:crypto";
import fnv1a from "@sindresorhus/fnv1a";

/** FNV-1a 64 of the text's UTF-8 bytes, as 16 hex digits. */
export function fnv1a64(text: string): string {
  return fnv1a(text, { size: 64 }).toString(16).padStart(16, "0");
}

/** SHA-256 of the bytes (or of the text's UTF-8 bytes), as 64 hex digits. */
export function sha256Hex(data: Uint8Array | string): string {
  return createHash("sha256").update(data).digest("hex");
}
