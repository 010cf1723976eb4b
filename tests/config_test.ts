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
