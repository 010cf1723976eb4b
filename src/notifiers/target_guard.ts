/**
 * The webhook target guard: a notifier must not become a way into the service's own network
 * (SSRF). A receiver host is resolved, and every address it resolves to must be a public one,
 * unless the notifier's configuration allows private targets or names the host.
 *
 * @module
 */
import { z } from "zod";
import { DeliveryError } from "./errors.ts";

/** What an address is, for the guard's decision and its error message. */
export type AddressClass =
  | "public"
  | "loopback"
  | "private"
  | "link-local"
  | "shared (CGNAT)"
  | "unspecified"
  | "cloud metadata";

/** Options a plugin adds to its own schema (`z.strictObject({ url, ...targetOptions })`). */
export const targetOptions = {
  /** Allow loopback, private, link-local, CGNAT and metadata addresses (a receiver on the same host or LAN). */
  allow_private_targets: z.boolean().default(false),
  /** Hosts (names or addresses, as written in the URL) that are allowed whatever they resolve to. */
  allowed_hosts: z.array(z.string().min(1)).default([]),
};

export interface TargetPolicy {
  allow_private_targets: boolean;
  allowed_hosts: readonly string[];
}

export interface GuardOptions {
  signal?: AbortSignal;
  /** Resolves a host name to its addresses; Deno.resolveDns (A and AAAA) by default. */
  resolve?: (host: string, signal?: AbortSignal) => Promise<string[]>;
}

/**
 * Throws a DeliveryError unless every address of `url`'s host is public or the policy allows it.
 * A refused address is a configuration error (not retried: the notification goes to the DLQ); a
 * host that does not resolve is a network error (retried), never a pass.
 */
export async function guardTarget(
  url: string,
  policy: TargetPolicy,
  options: GuardOptions = {},
): Promise<void> {
  if (policy.allow_private_targets) return;
  const host = new URL(url).hostname.replace(/^\[(.*)\]$/, "$1").toLowerCase();
  if (policy.allowed_hosts.some((h) => h.replace(/^\[(.*)\]$/, "$1").toLowerCase() === host)) return;
  let addresses: string[];
  if (classifyAddress(host) !== null) {
    addresses = [host];
  } else {
    addresses = await (options.resolve ?? _resolveDns)(host, options.signal);
    if (addresses.length === 0) {
      throw new DeliveryError(`Cannot resolve receiver host "${host}"`, {
        reason: "network",
        retryable: true,
      });
    }
  }
  for (const address of addresses) {
    const kind = classifyAddress(address);
    if (kind === "public") continue;
    const of = address === host ? "" : ` of host "${host}"`;
    throw new DeliveryError(
      `Receiver address "${address}"${of} is ${kind ?? "not an IP address"}: refused unless the notifier ` +
        `sets "allow_private_targets: true" or lists "${host}" in "allowed_hosts"`,
      { reason: "client", retryable: false },
    );
  }
}

/** The class of an IPv4 or IPv6 address (without brackets), or null when `text` is not one. */
export function classifyAddress(text: string): AddressClass | null {
  const v4 = _parseIpv4(text);
  if (v4 !== null) return _classifyIpv4(v4);
  const v6 = _parseIpv6(text);
  return v6 === null ? null : _classifyIpv6(v6);
}

function _classifyIpv4([a, b, c, d]: number[]): AddressClass {
  if (a === 0) return "unspecified";
  if (a === 127) return "loopback";
  if (a === 169 && b === 254) return c === 169 && d === 254 ? "cloud metadata" : "link-local";
  if (a === 10 || (a === 172 && b! >= 16 && b! <= 31) || (a === 192 && b === 168)) return "private";
  if (a === 100 && b! >= 64 && b! <= 127) return "shared (CGNAT)";
  return "public";
}

function _classifyIpv6(h: number[]): AddressClass {
  const zeros = (from: number, to: number) => h.slice(from, to).every((x) => x === 0);
  if (zeros(0, 8)) return "unspecified";
  if (zeros(0, 7) && h[7] === 1) return "loopback";
  // IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d) and NAT64 (64:ff9b::a.b.c.d) reach an IPv4 host.
  if (zeros(0, 5) && (h[5] === 0xffff || h[5] === 0) || (h[0] === 0x64 && h[1] === 0xff9b && zeros(2, 6))) {
    return _classifyIpv4([h[6]! >> 8, h[6]! & 0xff, h[7]! >> 8, h[7]! & 0xff]);
  }
  if (h[0] === 0xfd00 && h[1] === 0x0ec2 && zeros(2, 7) && h[7] === 0x254) return "cloud metadata";
  if ((h[0]! & 0xfe00) === 0xfc00) return "private";
  if ((h[0]! & 0xffc0) === 0xfe80) return "link-local";
  return "public";
}

function _parseIpv4(text: string): number[] | null {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (m === null) return null;
  const parts = m.slice(1).map(Number);
  return parts.every((p) => p <= 255) ? parts : null;
}

/** Eight 16-bit groups, or null. Accepts `::` and a dotted IPv4 tail. */
function _parseIpv6(text: string): number[] | null {
  if (!text.includes(":") || !/^[0-9a-f:.]+$/i.test(text)) return null;
  let s = text;
  const tail: number[] = [];
  const dotted = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (dotted !== null) {
    const v4 = _parseIpv4(dotted[2]!);
    if (v4 === null) return null;
    tail.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
    s = dotted[1]!.endsWith("::") ? dotted[1]! : dotted[1]!.slice(0, -1);
  }
  const halves = s.split("::");
  if (halves.length > 2) return null;
  const groups = (part: string) => part === "" ? [] : part.split(":");
  const head = groups(halves[0]!);
  const rest = halves.length === 2 ? groups(halves[1]!) : [];
  if ([...head, ...rest].some((g) => !/^[0-9a-f]{1,4}$/i.test(g))) return null;
  const missing = 8 - head.length - rest.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return null;
  return [
    ...head.map((g) => parseInt(g, 16)),
    ...new Array(halves.length === 2 ? missing : 0).fill(0),
    ...rest.map((g) => parseInt(g, 16)),
    ...tail,
  ];
}

async function _resolveDns(host: string, signal?: AbortSignal): Promise<string[]> {
  const lookups = await Promise.allSettled(
    (["A", "AAAA"] as const).map((type) => Deno.resolveDns(host, type, signal ? { signal } : {})),
  );
  return lookups.flatMap((r) => r.status === "fulfilled" ? r.value : []);
}
