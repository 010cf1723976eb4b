/**
 * Who a connection comes from, for the fair shares of connection slots and live streams: an IPv4
 * address, or the /64 of an IPv6 one. One host commonly holds a whole /64 (privacy addresses, a
 * cloud VM's prefix), and counted per address it could take every slot with as many addresses as
 * it liked. An IPv4 address mapped into IPv6 (a dual-stack listener) is its IPv4 address. What is not
 * an address (a socket that no longer has one: "") is itself.
 *
 * @module
 */
import ipaddr from "ipaddr.js";

export function clientOf(address: string): string {
  if (ipaddr.IPv4.isValidFourPartDecimal(address)) return address;
  // A zone (`fe80::1%eth0`) names the interface, not the host: the prefix is what counts.
  const bare = address.split("%", 1)[0]!;
  if (!bare.includes(":") || !ipaddr.IPv6.isValid(bare)) return address;
  const ip = ipaddr.IPv6.parse(bare);
  if (ip.isIPv4MappedAddress()) return ip.toIPv4Address().toString();
  return `${ip.parts.slice(0, 4).map((p) => p.toString(16)).join(":")}::/64`;
}
