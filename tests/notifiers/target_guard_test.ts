import assert from "node:assert/strict";
import { lookup } from "node:dns/promises";
import {
  type AddressClass,
  classifyAddress,
  guardTarget,
  pinnedClient,
  resolveHost,
} from "../../src/notifiers/target_guard.ts";
import { DeliveryError } from "../../src/notifiers/plugin.ts";
import { postJson } from "../../src/notifiers/policy.ts";
import { Receiver } from "../helpers/receiver.ts";

const DENY = { allow_private_targets: false, allowed_hosts: [] };

/** Address → class; everything but "public" is refused by default. */
const ADDRESSES: [string, AddressClass][] = [
  ["8.8.8.8", "public"],
  ["93.184.216.34", "public"],
  ["127.0.0.1", "loopback"],
  ["127.255.0.9", "loopback"],
  ["0.0.0.0", "unspecified"],
  ["0.1.2.3", "unspecified"],
  ["10.0.0.1", "private"],
  ["172.16.0.1", "private"],
  ["172.31.255.255", "private"],
  ["172.32.0.1", "public"],
  ["172.15.255.255", "public"],
  ["192.168.1.20", "private"],
  ["192.169.0.1", "public"],
  ["169.254.0.1", "link-local"],
  ["169.254.169.254", "cloud metadata"],
  ["100.64.0.1", "shared (CGNAT)"],
  ["100.127.255.255", "shared (CGNAT)"],
  ["100.128.0.1", "public"],
  ["100.63.255.255", "public"],
  ["::", "unspecified"],
  ["::1", "loopback"],
  ["0:0:0:0:0:0:0:1", "loopback"],
  ["fc00::1", "private"],
  ["fdff:ffff::1", "private"],
  ["fd00:ec2::254", "cloud metadata"],
  ["fe80::1", "link-local"],
  ["febf::1", "link-local"],
  ["fec0::1", "site-local"],
  ["2001:4860:4860::8888", "public"],
  ["::ffff:127.0.0.1", "loopback (IPv4-mapped for 127.0.0.1)"],
  ["::ffff:7f00:1", "loopback (IPv4-mapped for 127.0.0.1)"],
  ["::ffff:a9fe:a9fe", "cloud metadata (IPv4-mapped for 169.254.169.254)"],
  ["::ffff:8.8.8.8", "public"],
  ["64:ff9b::10.0.0.1", "private (NAT64 for 10.0.0.1)"],
  // Only global unicast passes: multicast, broadcast, reserved (240/4), benchmarking (198.18/15),
  // documentation and anything outside 2000::/3 are refused like private ranges.
  ["224.0.0.1", "multicast"],
  ["239.255.255.250", "multicast"],
  ["255.255.255.255", "broadcast"],
  ["240.0.0.1", "reserved"],
  ["198.18.0.1", "reserved"],
  ["198.19.255.255", "reserved"],
  ["198.20.0.1", "public"],
  ["192.0.2.1", "reserved"],
  ["ff02::1", "multicast"],
  ["ff0e::101", "multicast"],
  ["2001:db8::1", "reserved"],
  ["100::1", "discard"],
  ["4000::1", "reserved"],
  ["2606:4700:4700::1111", "public"],
  // Transition ranges carry an IPv4 address, which is what the packets reach: it decides.
  ["::ffff:10.1.2.3", "private (IPv4-mapped for 10.1.2.3)"],
  ["::ffff:0:7f00:1", "loopback (IPv4-translated for 127.0.0.1)"],
  ["::7f00:1", "loopback (IPv4-compatible for 127.0.0.1)"],
  ["::a9fe:a9fe", "cloud metadata (IPv4-compatible for 169.254.169.254)"],
  ["::808:808", "public"],
  ["2002:7f00:1::", "loopback (6to4 for 127.0.0.1)"],
  ["2002:a9fe:a9fe::1", "cloud metadata (6to4 for 169.254.169.254)"],
  ["2002:c0a8:101::1", "private (6to4 for 192.168.1.1)"],
  ["2002:808:808::1", "public"],
  // Teredo: server 65.54.227.120, client the inverted last 32 bits (80ff:fffe → 127.0.0.1).
  ["2001:0:4136:e378:8000:63bf:80ff:fffe", "loopback (Teredo client 127.0.0.1)"],
  ["2001:0:4136:e378:8000:63bf:f5ff:fffe", "private (Teredo client 10.0.0.1)"],
  ["2001:0:a00:1:8000:63bf:f7f7:f7f7", "private (Teredo server 10.0.0.1)"],
  ["2001:0:4136:e378:8000:63bf:f7f7:f7f7", "public"],
  ["64:ff9b::7f00:1", "loopback (NAT64 for 127.0.0.1)"],
  ["64:ff9b::808:808", "public"],
  ["64:ff9b:1::a00:1", "local-use NAT64"],
  ["64:ff9b:1:ffff::808:808", "local-use NAT64"],
];

for (const [address, expected] of ADDRESSES) {
  Deno.test(`classifyAddress() says "${address}" is ${expected}`, () => {
    assert.equal(classifyAddress(address), expected);
  });
}

Deno.test("classifyAddress() returns null for host names and malformed addresses", () => {
  for (const text of ["localhost", "example.com", "256.0.0.1", "1.2.3", "1::2::3", "1:2:3:4:5:6:7:8:9", ""]) {
    assert.equal(classifyAddress(text), null, text);
  }
});

Deno.test("guardTarget() refuses literal loopback, private and metadata URLs as a client error", async () => {
  for (
    const url of [
      "http://127.0.0.1:8080/hook",
      "http://[::1]/hook",
      "http://10.1.2.3/hook",
      "http://169.254.169.254/latest/meta-data/",
      "http://[fd00:ec2::254]/",
      "http://[::ffff:127.0.0.1]/",
      "http://[2002:7f00:1::]/",
      "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/",
      "http://[64:ff9b::a9fe:a9fe]/",
      "http://[64:ff9b:1::a00:1]/",
      "http://224.0.0.1/",
      "http://[ff02::1]/",
      "http://240.0.0.1/",
      "http://198.18.0.1/",
      "http://[fec0::1]/",
      // The URL parser turns these spellings into 127.0.0.1 before the guard sees them.
      "http://2130706433/",
      "http://0x7f.1/",
    ]
  ) {
    const err = await guardTarget(url, DENY).then(() => null, (e) => e);
    assert.ok(err instanceof DeliveryError, `${url} was allowed`);
    assert.equal(err.reason, "client", url);
    assert.equal(err.retryable, false, url);
    assert.match(
      err.message,
      /^Receiver address ".+" is [\w (),.-]+: refused unless the notifier sets/,
      url,
    );
  }
});

Deno.test("guardTarget() resolves a host name and refuses it when any address is private", async () => {
  const err = await guardTarget("https://hooks.example/x", DENY, {
    resolve: () => Promise.resolve(["93.184.216.34", "10.0.0.7"]),
  }).then(() => null, (e) => e);
  assert.ok(err instanceof DeliveryError);
  assert.equal(
    err.message,
    'Receiver address "10.0.0.7" of host "hooks.example" is private: refused unless the notifier sets ' +
      '"allow_private_targets: true" or lists "hooks.example" in "allowed_hosts"',
  );
  await guardTarget("https://hooks.example/x", DENY, { resolve: () => Promise.resolve(["93.184.216.34"]) });
});

Deno.test("guardTarget() refuses localhost after resolving it with the system resolver", async () => {
  const err = await guardTarget("http://localhost:9/h", DENY).then(() => null, (e) => e);
  assert.ok(err instanceof DeliveryError);
  assert.match(err.message, /^Receiver address "(127\.0\.0\.1|::1)" of host "localhost" is loopback/);
  assert.equal(err.retryable, false);
});

Deno.test("guardTarget() retries, never passes, a host that does not resolve", async () => {
  const err = await guardTarget("https://nothing.invalid/", DENY, { resolve: () => Promise.resolve([]) })
    .then(() => null, (e) => e);
  assert.ok(err instanceof DeliveryError);
  assert.equal(err.message, 'Cannot resolve receiver host "nothing.invalid"');
  assert.equal(err.reason, "network");
  assert.equal(err.retryable, true);
});

Deno.test("guardTarget() lets through what the configuration allows, without resolving", async () => {
  const resolve = () => Promise.reject(new Error("must not resolve"));
  await guardTarget("http://127.0.0.1/", { allow_private_targets: true, allowed_hosts: [] }, { resolve });
  await guardTarget("http://Receiver.LAN:8080/", {
    allow_private_targets: false,
    allowed_hosts: ["receiver.lan"],
  }, { resolve });
  await guardTarget("http://[::1]:9/", { allow_private_targets: false, allowed_hosts: ["[::1]"] }, {
    resolve,
  });
  // Allowing one host does not allow another.
  await assert.rejects(
    guardTarget("http://127.0.0.2/", { allow_private_targets: false, allowed_hosts: ["127.0.0.1"] }),
    DeliveryError,
  );
});

Deno.test("guardTarget() refuses a scheme other than http and https, whatever the policy allows", async () => {
  for (const url of ["ftp://8.8.8.8/x", "file:///etc/passwd", "ws://8.8.8.8/", "gopher://127.0.0.1:6379/_"]) {
    for (const policy of [DENY, { allow_private_targets: true, allowed_hosts: ["8.8.8.8", "127.0.0.1"] }]) {
      const err = await guardTarget(url, policy, { resolve: () => Promise.resolve(["8.8.8.8"]) })
        .then(() => null, (e) => e);
      assert.ok(err instanceof DeliveryError, `${url} was allowed`);
      assert.equal(err.retryable, false);
      assert.match(err.message, /^Receiver URL scheme ".+:" is not allowed: use http or https$/, url);
    }
  }
});

Deno.test("resolveHost() answers what getaddrinfo answers, the resolver fetch connects with", async () => {
  // Deno.resolveDns (a DNS client) and getaddrinfo (/etc/hosts, NSS, then DNS) disagree, e.g. on
  // "localhost" here; the guard must check the addresses fetch will use.
  for (const host of ["localhost", Deno.hostname()]) {
    const expected = (await lookup(host, { all: true, verbatim: true })).map((a) => a.address);
    assert.deepEqual(await resolveHost(host), expected, host);
  }
  assert.deepEqual(await resolveHost("nothing.invalid"), []);
});

Deno.test("guardTarget() returns the addresses it checked, none when the policy let the host through", async () => {
  const target = await guardTarget("http://hooks.example:8080/x", DENY, {
    resolve: () => Promise.resolve(["93.184.216.34", "2606:2800:220:1::1"]),
  });
  assert.deepEqual(target.addresses, ["93.184.216.34", "2606:2800:220:1::1"]);
  const allowed = await guardTarget("http://127.0.0.1/", { allow_private_targets: true, allowed_hosts: [] });
  assert.deepEqual(allowed.addresses, []);
});

Deno.test("pinnedClient() connects to the checked address, not to what the name resolves to later", async () => {
  const receiver = await Receiver.start(200);
  try {
    const port = new URL(receiver.url).port;
    // "rebind.invalid" resolves to nothing: a request can only reach the receiver through the pin.
    const url = `http://rebind.invalid:${port}/hook`;
    const client = pinnedClient(url, { addresses: ["127.0.0.1"] });
    assert.ok(client !== undefined);
    try {
      const res = await fetch(url, { method: "POST", body: "x", client });
      await res.body?.cancel();
      assert.equal(res.status, 200);
    } finally {
      client.close();
    }
    assert.equal(receiver.received.length, 1);
    assert.equal(
      receiver.received[0]!.headers.get("host"),
      `rebind.invalid:${port}`,
      "the Host header is kept",
    );
    // Nothing to pin: https is pinned by its certificate, a literal address cannot rebind, and a
    // target let through by the policy was never resolved.
    assert.equal(pinnedClient(`https://rebind.invalid:${port}/`, { addresses: ["127.0.0.1"] }), undefined);
    assert.equal(pinnedClient(`http://127.0.0.1:${port}/`, { addresses: ["127.0.0.1"] }), undefined);
    assert.equal(pinnedClient(url, { addresses: [] }), undefined);
  } finally {
    await receiver.down();
  }
});

Deno.test("pinnedClient() connects to a checked IPv6 address", async () => {
  const server = Deno.serve({ hostname: "::1", port: 0, onListen: () => {} }, () => new Response("v6"));
  try {
    const url = `http://rebind.invalid:${server.addr.port}/`;
    const client = pinnedClient(url, { addresses: ["::1"] })!;
    try {
      const res = await fetch(url, { client });
      assert.equal(await res.text(), "v6");
    } finally {
      client.close();
    }
  } finally {
    await server.shutdown();
  }
});

Deno.test("postJson() sends through the pinned client, so the built-in notifiers connect to the checked address", async () => {
  const receiver = await Receiver.start(200);
  try {
    const port = new URL(receiver.url).port;
    // "rebind.invalid" resolves to nothing: only the pinned client reaches the receiver.
    const url = `http://rebind.invalid:${port}/hook`;
    const client = pinnedClient(url, { addresses: ["127.0.0.1"] })!;
    try {
      await postJson(url, "{}", { timeoutMs: 5_000, client });
    } finally {
      client.close();
    }
    assert.equal(receiver.received.length, 1);
    await assert.rejects(
      postJson(url, "{}", { timeoutMs: 5_000 }),
      DeliveryError,
      "unpinned, the name does not resolve",
    );
  } finally {
    await receiver.down();
  }
});
