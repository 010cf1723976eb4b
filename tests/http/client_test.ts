import assert from "node:assert/strict";
import { clientOf } from "../../src/http/client.ts";

Deno.test("clientOf() counts an IPv4 address alone and an IPv6 address by its /64", () => {
  const table: [string, string][] = [
    ["127.0.0.2", "127.0.0.2"],
    ["::ffff:127.0.0.2", "127.0.0.2"],
    ["::ffff:7f00:2", "127.0.0.2"],
    ["2001:db8:1:2:a::1", "2001:db8:1:2::/64"],
    ["2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"],
    ["2001:DB8:1:2::9", "2001:db8:1:2::/64"],
    ["2001:db8:1:3::1", "2001:db8:1:3::/64"],
    ["fe80::1%eth0", "fe80:0:0:0::/64"],
    ["::1", "0:0:0:0::/64"],
    ["", ""],
    ["not an address", "not an address"],
  ];
  for (const [address, client] of table) assert.equal(clientOf(address), client, address);
});
