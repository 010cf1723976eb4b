/**
 * A deterministic alert id: the same rule, group and triggering event always give the same id, so
 * an episode replayed after a crash is recognisable downstream. 64 bits of two FNV-1a hashes.
 *
 * Not src/hash.ts's FNV-1a 64: these values are the ids already on the alerts topic and in receivers'
 * de-duplication (another hash would give an episode replayed across an upgrade a second id), and
 * this runs for every episode that opens, 5x faster than the library's BigInt loop (0.6 µs against
 * 3.0 µs for a 60-character id text, 200,000 ids).
 */
export function alertId(ruleId: string, group: string, eventId: string): string {
  const text = `${ruleId}\u0000${group}\u0000${eventId}`;
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ 0x5bd1e995;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x01000193) ^ (b >>> 13);
  }
  return `${hex(a)}${hex(b)}`;
}

function hex(n: number): string {
  return (n >>> 0).toString(16).padStart(8, "0");
}
