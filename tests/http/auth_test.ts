import assert from "node:assert/strict";
import { checkWrite } from "../../src/http/auth.ts";

const req = (headers: Record<string, string>) =>
  new Request("http://127.0.0.1:8080/api/alerts/a1/ack", {
    method: "POST",
    headers: { host: "127.0.0.1:8080", "content-type": "application/json", ...headers },
  });

Deno.test("checkWrite() decides each request by token and origin", () => {
  const token = "s3cret-token";
  const table: [string, Record<string, string>, string | null, number | null][] = [
    ["no token configured, local client", {}, null, null],
    ["no token configured, same-origin page", { origin: "http://127.0.0.1:8080" }, null, null],
    ["no token configured, other origin", { origin: "http://evil.example" }, null, 403],
    ["no token configured, opaque origin", { origin: "null" }, null, 403],
    [
      "no token configured, JSON with a charset",
      { "content-type": "application/json; charset=utf-8" },
      null,
      null,
    ],
    ["no token configured, form body", { "content-type": "application/x-www-form-urlencoded" }, null, 415],
    ["no token configured, text body", { "content-type": "text/plain" }, null, 415],
    ["token configured, none sent", {}, token, 401],
    ["token configured, wrong one", { authorization: "Bearer s3cret-tokem" }, token, 401],
    ["token configured, prefix of it", { authorization: "Bearer s3cret" }, token, 401],
    ["token configured, not bearer", { authorization: `Basic ${token}` }, token, 401],
    ["token configured, right one", { authorization: `Bearer ${token}` }, token, null],
    [
      "right token from another origin",
      { authorization: `Bearer ${token}`, origin: "http://x.test" },
      token,
      403,
    ],
  ];
  for (const [name, headers, configured, expected] of table) {
    assert.equal(checkWrite(req(headers), configured)?.status ?? null, expected, name);
  }
  const untyped = new Request("http://127.0.0.1:8080/api/alerts/a1/ack", {
    method: "POST",
    headers: { host: "127.0.0.1:8080" },
  });
  assert.equal(checkWrite(untyped, null)?.status, 415, "no Content-Type");
});

Deno.test("checkWrite() compares the Origin's host with the Host header as hosts: case and default port aside", () => {
  const from = (host: string, origin: string) =>
    checkWrite(
      new Request("http://sensors.example/api/alerts/a1/ack", {
        method: "POST",
        headers: { host, origin, "content-type": "application/json" },
      }),
      null,
    )?.status ?? null;
  assert.equal(from("Sensors.Example:8080", "http://sensors.example:8080"), null, "a Host in capitals");
  assert.equal(from("sensors.example:80", "http://sensors.example"), null, "http's default port named");
  assert.equal(from("sensors.example:443", "https://sensors.example"), null, "https's default port named");
  assert.equal(from("sensors.example:8080", "http://sensors.example"), 403, "another port");
  assert.equal(from("sensors.example.evil.test", "http://sensors.example"), 403, "another host");
  assert.equal(from("sensors.example/x", "http://sensors.example"), 403, "a Host that is not a host");
});

Deno.test("checkWrite() never puts the token in its reason", () => {
  const token = "s3cret-token";
  for (const auth of ["Bearer nope", `Bearer ${token}x`, ""]) {
    const denied = checkWrite(req(auth ? { authorization: auth } : {}), token);
    assert.ok(denied !== null);
    assert.ok(!denied.error.includes(token), denied.error);
  }
});
