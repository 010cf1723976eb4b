/**
 * Which `Host` a request may name. A web page can make a browser send requests to 127.0.0.1 through
 * DNS rebinding: its own name (`rebind.evil.example`) resolves to the attacker first, then to
 * 127.0.0.1, and the page is then same-origin with this server in the browser's eyes. What gives it
 * away is the `Host` header, which still carries the attacker's name.
 *
 * @module
 */
import { isIP } from "node:net";

const LOOPBACK_NAMES = ["localhost", "127.0.0.1", "::1"];

/**
 * A check of the `Host` header against the names the server answers to: loopback names, the address
 * it listens on, and `extra` (HTTP_ALLOWED_HOSTS, e.g. a reverse proxy's public name). Any IP
 * address is accepted too: rebinding needs a name, and a page whose origin is an IP address is
 * that address (e.g. the machine's LAN address when listening on 0.0.0.0).
 */
export function hostChecker(listenHost: string, extra: readonly string[]): (host: string | null) => boolean {
  const names = new Set([...LOOPBACK_NAMES, ...extra, listenHost].map(normalise));
  return (host) => {
    if (host === null) return false;
    const name = hostname(host);
    return name !== null && (names.has(name) || isIP(name) !== 0);
  };
}

/** The name of a `Host` value without its port, lower case, or null when it is not one. */
function hostname(host: string): string | null {
  const m = /^(?:\[([0-9a-f:.]+)\]|([^:\[\]/?#@\s]+))(?::\d{1,5})?$/i.exec(host.trim());
  if (m === null) return null;
  return normalise(m[1] ?? m[2]!);
}

/** Lower case, without brackets and a final dot: `LOCALHOST.` and `[::1]` are `localhost` and `::1`. */
function normalise(name: string): string {
  return name.toLowerCase().replace(/^\[(.*)\]$/, "$1").replace(/\.$/, "");
}
