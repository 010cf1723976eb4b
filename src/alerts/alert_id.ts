/**
 * A deterministic alert id: the same rule, group and triggering event always give the same id, so
 * an episode replayed after a crash is recognisable downstream. 64 bits of two FNV-1a hashes.
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
