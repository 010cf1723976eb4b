import assert from "node:assert/strict";
import { loadConfig } from "../src/config.ts";

function skew(value: string | undefined): number {
  const config = loadConfig([], { MAX_FUTURE_SKEW: value });
  assert.ok(config !== "help");
  return config.maxFutureSkewMs;
}

Deno.test('loadConfig() reads MAX_FUTURE_SKEW as a duration, 5 minutes by default, "off" for none', () => {
  assert.equal(skew(undefined), 300_000);
  assert.equal(skew(""), 300_000);
  assert.equal(skew("30s"), 30_000);
  assert.equal(skew("1h"), 3_600_000);
  assert.equal(skew("90"), 90_000);
  assert.equal(skew("off"), Infinity);
});

Deno.test("loadConfig() refuses a MAX_FUTURE_SKEW that is not a duration", () => {
  assert.throws(() => skew("soon"), {
    name: "TypeError",
    message: 'MAX_FUTURE_SKEW must be a duration like "5m", or "off", got "soon"',
  });
});

Deno.test("loadConfig() reads KAFKA_MAX_PARTITION_FETCH_BYTES, 1 MiB by default, at least 1 KiB", () => {
  const fetchBytes = (value: string | undefined) => {
    const config = loadConfig([], { KAFKA_MAX_PARTITION_FETCH_BYTES: value });
    assert.ok(config !== "help");
    return config.maxPartitionFetchBytes;
  };
  assert.equal(fetchBytes(undefined), 1_048_576);
  assert.equal(fetchBytes("262144"), 262_144);
  assert.throws(() => fetchBytes("100"), { name: "TypeError", message: /KAFKA_MAX_PARTITION_FETCH_BYTES/ });
  assert.throws(() => fetchBytes("lots"), { name: "TypeError", message: /KAFKA_MAX_PARTITION_FETCH_BYTES/ });
});

Deno.test("loadConfig() refuses an API_TOKEN shorter than 16 characters without printing it", () => {
  for (const host of ["127.0.0.1", "0.0.0.0"]) {
    assert.throws(() => loadConfig([], { HTTP_HOST: host, API_TOKEN: "hunter2" }), (err: Error) => {
      assert.equal(err.name, "TypeError");
      assert.match(err.message, /^API_TOKEN must be at least 16 characters long \(it has 7\)/);
      assert.ok(!err.message.includes("hunter2"));
      return true;
    });
  }
  const config = loadConfig([], { HTTP_HOST: "0.0.0.0", API_TOKEN: "0123456789abcdef" });
  assert.ok(config !== "help");
  assert.equal(config.http.token, "0123456789abcdef");
});

Deno.test("loadConfig() reads the HTTP limits and allowed hosts, with defaults", () => {
  const http = (env: Record<string, string>) => {
    const config = loadConfig([], env);
    assert.ok(config !== "help");
    return config.http;
  };
  const defaults = http({});
  assert.deepEqual(
    [defaults.allowedHosts, defaults.maxStreams, defaults.maxConnections, defaults.requestTimeoutMs],
    [[], 64, 256, 10_000],
  );
  const set = http({
    HTTP_ALLOWED_HOSTS: " Sensors.Example.com, proxy.internal ,",
    HTTP_MAX_STREAMS: "3",
    HTTP_MAX_CONNECTIONS: "10",
    HTTP_REQUEST_TIMEOUT_MS: "2500",
  });
  assert.deepEqual(set.allowedHosts, ["sensors.example.com", "proxy.internal"]);
  assert.deepEqual([set.maxStreams, set.maxConnections, set.requestTimeoutMs], [3, 10, 2500]);
  assert.throws(() => http({ HTTP_MAX_STREAMS: "0" }), { name: "TypeError", message: /HTTP_MAX_STREAMS/ });
  assert.throws(() => http({ HTTP_MAX_STREAMS: "300" }), {
    name: "TypeError",
    message: "HTTP_MAX_STREAMS (300) must be below HTTP_MAX_CONNECTIONS (256)",
  });
  assert.throws(() => http({ HTTP_REQUEST_TIMEOUT_MS: "soon" }), {
    name: "TypeError",
    message: /HTTP_REQUEST_TIMEOUT_MS/,
  });
});
