import assert from "node:assert/strict";
import { hostChecker } from "../../src/http/host.ts";

Deno.test("hostChecker() accepts the server's own names and IP addresses, refuses other names", () => {
  const allowed = hostChecker("0.0.0.0", ["sensors.example.com"]);
  const table: [string | null, boolean][] = [
    ["127.0.0.1:8080", true],
    ["localhost:8080", true],
    ["LOCALHOST.:8080", true],
    ["[::1]:8080", true],
    ["[::1]", true],
    ["10.1.2.3:8080", true],
    ["[fe80::1]:8080", true],
    ["sensors.example.com", true],
    ["Sensors.Example.COM:443", true],
    ["rebind.evil.example:8080", false],
    ["localhost.evil.example", false],
    ["127.0.0.1.evil.example", false],
    ["evil.example/x?", false],
    ["user@localhost", false],
    ["localhost:8080:1", false],
    ["", false],
    [null, false],
  ];
  for (const [host, expected] of table) assert.equal(allowed(host), expected, String(host));
});

Deno.test("hostChecker() accepts the name the server listens on", () => {
  const allowed = hostChecker("sensors.internal", []);
  assert.equal(allowed("sensors.internal:8080"), true);
  assert.equal(allowed("other.internal:8080"), false);
});
