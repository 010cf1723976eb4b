import assert from "node:assert/strict";
import { type AddressClass, classifyAddress, guardTarget } from "../../src/notifiers/target_guard.ts";
import { DeliveryError } from "../../src/notifiers/plugin.ts";

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
  ["fec0::1", "public"],
  ["2001:4860:4860::8888", "public"],
  ["::ffff:127.0.0.1", "loopback"],
  ["::ffff:7f00:1", "loopback"],
  ["::ffff:a9fe:a9fe", "cloud metadata"],
  ["::ffff:8.8.8.8", "public"],
  ["64:ff9b::10.0.0.1", "private"],
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
      /^Receiver address ".+" is [a-z (A-Z)-]+: refused unless the notifier sets/,
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
