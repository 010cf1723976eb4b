/**
 * The webhook target guard: a notifier must not become a way into the service's own network
 * (SSRF). The URL must be http or https; its host is resolved with getaddrinfo, the resolver
 * `fetch` connects with, and every address must be global unicast (ipaddr.js classifies; an IPv4
 * address carried inside an IPv6 transition address decides for it), unless the notifier's
 * configuration allows private targets or names the host.
 *
 * DNS rebinding (a name that answers a public address to the check and a private one to the
 * connect): over https the connection is bound to the name by its certificate, which no host on
 * the private side holds for the attacker's name; over plain http `pinnedClient` connects to the
 * address that was checked, so no second lookup happens.
 *
 * @module
 */
import { lookup } from "node:dns/promises";
import ipaddr from "ipaddr.js";
import { z } from "zod";
import { DeliveryError } from "./errors.ts";

/**
 * What an address is, for the guard's decision and its error message: "public" (global unicast, the
 * only class let through by default), or why not: "loopback", "private", "link-local",
 * "shared (CGNAT)", "multicast", "reserved", "site-local", "cloud metadata", "local-use NAT64", …,
 * and for a transition address the class of the IPv4 address inside it ("loopback (6to4 for 127.0.0.1)").
 */
export type AddressClass = string;

/** Options a plugin adds to its own schema (`z.strictObject({ url, ...targetOptions })`). */
export const targetOptions: {
  allow_private_targets: z.ZodDefault<z.ZodBoolean>;
  allowed_hosts: z.ZodDefault<z.ZodArray<z.ZodString>>;
} = {
  /** Allow loopback, private, link-local, CGNAT and metadata addresses (a receiver on the same host or LAN). */
  allow_private_targets: z.boolean().default(false),
  /** Hosts (names or addresses, as written in the URL) that are allowed whatever they resolve to. */
  allowed_hosts: z.array(z.string().min(1)).default([]),
};

/** Which targets beyond public addresses a notifier may reach: the parsed `targetOptions`. */
export interface TargetPolicy {
  /** Allow loopback, private, link-local, CGNAT and metadata addresses. */
  allow_private_targets: boolean;
  /** Hosts (as written in the URL) allowed whatever they resolve to. */
  allowed_hosts: readonly string[];
}

/** How `guardTarget` resolves the host. */
export interface GuardOptions {
  /** Aborts the lookup: pass `NotifyContext.signal`. */
  signal?: AbortSignal;
  /** Resolves a host name to its addresses; `resolveHost` (getaddrinfo, as `fetch`) by default. */
  resolve?: (host: string, signal?: AbortSignal) => Promise<string[]>;
}

/** What the guard let through: the addresses it checked (none when the policy let the host through unchecked). */
export interface GuardedTarget {
  /** The addresses the host resolved to, all allowed: `pinnedClient` connects to them. */
  addresses: readonly string[];
}

/**
 * Throws a DeliveryError unless `url` is http(s) and every address of its host is public or the
 * policy allows it. A refused URL is a configuration error (not retried: the notification goes to
 * the DLQ); a host that does not resolve is a network error (retried), never a pass.
 */
export async function guardTarget(
  url: string,
  policy: TargetPolicy,
  options: GuardOptions = {},
): Promise<GuardedTarget> {
  // The URL itself is not quoted: it may carry the secret (Slack's token is its path).
  const parsed = URL.canParse(url) ? new URL(url) : null;
  if (parsed === null || (parsed.protocol !== "http:" && parsed.protocol !== "https:")) {
    throw new DeliveryError(
      `Receiver URL scheme "${parsed?.protocol ?? "(none)"}" is not allowed: use http or https`,
      { reason: "client", retryable: false },
    );
  }
  if (policy.allow_private_targets) return { addresses: [] };
  const host = _unbracket(parsed.hostname).toLowerCase();
  if (policy.allowed_hosts.some((h) => _unbracket(h).toLowerCase() === host)) return { addresses: [] };
  let addresses: string[];
  if (classifyAddress(host) !== null) {
    addresses = [host];
  } else {
    try {
      addresses = await (options.resolve ?? resolveHost)(host, options.signal);
    } catch (err) {
      if (options.signal?.aborted) throw err;
      const code = (err as { code?: unknown }).code;
      throw new DeliveryError(
        `Cannot resolve receiver host "${host}"${typeof code === "string" ? `: ${code}` : ""}`,
        { reason: "network", retryable: true },
        { cause: err },
      );
    }
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
  return { addresses };
}

/**
 * The addresses of `host` as getaddrinfo gives them (/etc/hosts, NSS, then DNS), which is what
 * `fetch` connects to; Deno.resolveDns asks DNS only and can answer otherwise (here: "localhost"
 * is 127.0.0.1 to getaddrinfo, 127.0.0.1 and ::1 to resolveDns). Empty when the name does not exist.
 */
export async function resolveHost(host: string, signal?: AbortSignal): Promise<string[]> {
  signal?.throwIfAborted();
  const answer = lookup(host, { all: true, verbatim: true }).then(
    (found) => found.map((a) => a.address),
    (err) => {
      if (err?.code === "ENOTFOUND" || err?.code === "ENODATA") return [];
      throw err;
    },
  );
  if (signal === undefined) return await answer;
  // getaddrinfo cannot be cancelled: stop waiting for it.
  return await new Promise<string[]>((resolve, reject) => {
    const abort = () => reject(signal.reason);
    signal.addEventListener("abort", abort, { once: true });
    answer.then(resolve, reject).finally(() => signal.removeEventListener("abort", abort));
  });
}

/**
 * An HTTP client whose connections go to the address the guard checked, whatever the URL's name
 * resolves to by then (DNS rebinding); the request keeps its URL and Host header. Undefined when
 * there is nothing to pin: https (bound to the name by the certificate; Deno's pinned transport
 * would not speak TLS), a literal address, or a target the policy let through unresolved. The
 * caller passes it to `fetch` as `client` and closes it after.
 */
export function pinnedClient(url: string, target: GuardedTarget): Deno.HttpClient | undefined {
  const parsed = new URL(url);
  const address = target.addresses[0];
  if (parsed.protocol !== "http:" || address === undefined) return undefined;
  if (classifyAddress(_unbracket(parsed.hostname)) !== null) return undefined;
  // The transport parses "host:port", so an IPv6 address needs its brackets.
  const hostname = address.includes(":") ? `[${address}]` : address;
  return Deno.createHttpClient({ proxy: { transport: "tcp", hostname, port: Number(parsed.port || 80) } });
}

/** The class of an IPv4 or IPv6 address (without brackets), or null when `text` is not one. */
export function classifyAddress(text: string): AddressClass | null {
  if (ipaddr.IPv4.isValidFourPartDecimal(text)) return _classifyIpv4(ipaddr.IPv4.parse(text));
  if (!text.includes(":") || !ipaddr.IPv6.isValid(text)) return null;
  return _classifyIpv6(ipaddr.IPv6.parse(text));
}

const IPV4_NAMES: Record<string, string> = {
  linkLocal: "link-local",
  carrierGradeNat: "shared (CGNAT)",
  as112: "reserved (AS112)",
  amt: "reserved (AMT)",
};
const IPV6_NAMES: Record<string, string> = {
  linkLocal: "link-local",
  // Unique local addresses (fc00::/7) are the IPv6 private networks.
  uniqueLocal: "private",
  deprecatedSiteLocal: "site-local",
};
const CLOUD_METADATA_V4 = ipaddr.IPv4.parse("169.254.169.254");
const CLOUD_METADATA_V6 = ipaddr.IPv6.parse("fd00:ec2::254");
/** RFC 8215: a network's own NAT64 prefix, where the IPv4 address may sit at any of several offsets. */
const LOCAL_NAT64 = ipaddr.parseCIDR("64:ff9b:1::/48");
/** Global unicast (RFC 4291): the rest of the space is unassigned or special. */
const GLOBAL_UNICAST = ipaddr.parseCIDR("2000::/3");

function _classifyIpv4(ip: ipaddr.IPv4): AddressClass {
  if (ip.toString() === CLOUD_METADATA_V4.toString()) return "cloud metadata";
  const range: string = ip.range();
  return range === "unicast" ? "public" : IPV4_NAMES[range] ?? range;
}

function _classifyIpv6(ip: ipaddr.IPv6): AddressClass {
  const range: string = ip.range();
  if (range === "unspecified" || range === "loopback") return range;
  if (ip.toNormalizedString() === CLOUD_METADATA_V6.toNormalizedString()) return "cloud metadata";
  if (ip.match(LOCAL_NAT64)) return "local-use NAT64";
  for (const [how, v4] of _embeddedIpv4(ip.parts)) {
    const inner = _classifyIpv4(v4);
    if (inner !== "public") return `${inner} (${how} ${v4.toString()})`;
  }
  if (_embeddedIpv4(ip.parts).length > 0) return "public";
  if (range === "unicast") return ip.match(GLOBAL_UNICAST) ? "public" : "reserved";
  return IPV6_NAMES[range] ?? range;
}

/** The IPv4 addresses a transition address reaches, with how each is carried; none for other addresses. */
function _embeddedIpv4(h: number[]): [string, ipaddr.IPv4][] {
  const v4 = (hi: number, lo: number) => new ipaddr.IPv4([hi >> 8, hi & 0xff, lo >> 8, lo & 0xff]);
  const zeros = (from: number, to: number) => h.slice(from, to).every((x) => x === 0);
  if (zeros(0, 5) && h[5] === 0xffff) return [["IPv4-mapped for", v4(h[6]!, h[7]!)]];
  if (zeros(0, 4) && h[4] === 0xffff && h[5] === 0) return [["IPv4-translated for", v4(h[6]!, h[7]!)]];
  if (zeros(0, 6)) return [["IPv4-compatible for", v4(h[6]!, h[7]!)]];
  if (h[0] === 0x64 && h[1] === 0xff9b && zeros(2, 6)) return [["NAT64 for", v4(h[6]!, h[7]!)]];
  if (h[0] === 0x2002) return [["6to4 for", v4(h[1]!, h[2]!)]];
  // Teredo (RFC 4380): the server's address, then the client's with every bit inverted.
  if (h[0] === 0x2001 && h[1] === 0) {
    return [["Teredo client", v4(~h[6]! & 0xffff, ~h[7]! & 0xffff)], ["Teredo server", v4(h[2]!, h[3]!)]];
  }
  return [];
}

function _unbracket(host: string): string {
  return host.replace(/^\[(.*)\]$/, "$1");
}
