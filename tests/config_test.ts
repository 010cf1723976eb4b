import assert from "node:assert/strict";
import { loadConfig, runMode, USAGE } from "../src/config.ts";
import { commands } from "../src/config/settings.ts";

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

Deno.test('loadConfig() reads an empty variable as unset: HTTP_PORT="" is the default port, not 0', () => {
  const config = loadConfig([], { HTTP_PORT: "", SENSOR_TOPIC: "", CONSUMER_GROUP: "", KAFKA_BROKERS: "" });
  assert.ok(config !== "help");
  assert.equal(config.http.port, 8080);
  assert.equal(config.topics.events, "sensor-events");
  assert.equal(config.topics.state, "sensor-processors-state-changelog");
  assert.deepEqual(config.brokers, []);
});

Deno.test("loadConfig() refuses an empty flag value, naming the flag", () => {
  assert.throws(() => loadConfig(["--http-port", ""], {}), {
    name: "TypeError",
    message: '--http-port must not be empty, got ""',
  });
});

Deno.test("loadConfig() names the variable and quotes its value in an error", () => {
  assert.throws(() => loadConfig([], { HTTP_PORT: "eighty" }), {
    name: "TypeError",
    message: 'HTTP_PORT must be an integer from 0 to 65535, got "eighty"',
  });
  assert.throws(() => loadConfig(["--http-port", "70000"], { HTTP_PORT: "80" }), {
    name: "TypeError",
    message: '--http-port must be an integer from 0 to 65535, got "70000"',
  });
});

Deno.test("loadConfig() lets a flag win over its variable, and the variable over the default", () => {
  const rulesDir = (args: string[], env: Record<string, string>) => {
    const config = loadConfig(args, env);
    assert.ok(config !== "help");
    return [config.rulesDir, config.pluginsDir];
  };
  assert.deepEqual(rulesDir([], {}), ["rules", "plugins"]);
  assert.deepEqual(rulesDir([], { RULES_DIR: "r", PLUGINS_DIR: "p" }), ["r", "p"]);
  assert.deepEqual(rulesDir(["--rules", "rf", "--plugins", "pf"], { RULES_DIR: "r", PLUGINS_DIR: "p" }), [
    "rf",
    "pf",
  ]);
});

Deno.test("USAGE names every flag and variable deno task start reads", () => {
  for (const name of ["--plugins", "--sensors", "PLUGINS_DIR", "AGGREGATES_FILE", "--accept-empty-state"]) {
    assert.ok(USAGE.includes(name), `USAGE misses ${name}`);
  }
  for (const setting of Object.values(commands.start.settings)) {
    if (setting.flag !== undefined) {
      assert.ok(USAGE.includes(`--${setting.flag}`), `USAGE misses --${setting.flag}`);
    }
    if (setting.env !== undefined) assert.ok(USAGE.includes(setting.env), `USAGE misses ${setting.env}`);
  }
});

Deno.test("loadConfig() refuses a LOG_LEVEL it does not know, which the logger alone reads as info", () => {
  assert.throws(() => loadConfig([], { LOG_LEVEL: "loud" }), {
    name: "TypeError",
    message: 'LOG_LEVEL must be one of debug, info, warn, error, got "loud"',
  });
  const config = loadConfig([], { LOG_LEVEL: "WARN" });
  assert.ok(config !== "help");
});

Deno.test("runMode() replays an --input even when KAFKA_BROKERS is set", () => {
  const mode = (args: string[], env: Record<string, string>) => {
    const config = loadConfig(args, env);
    assert.ok(config !== "help");
    return runMode(config);
  };
  assert.equal(mode(["--input", "events.ndjson"], { KAFKA_BROKERS: "127.0.0.1:9092" }), "replay");
  assert.equal(mode(["--input", "-"], {}), "replay");
  assert.equal(mode([], { KAFKA_BROKERS: "127.0.0.1:9092" }), "kafka");
  assert.equal(mode([], {}), "embedded");
});

Deno.test("loadConfig() reads --workers and WORKERS, one per core by default, at least 1", () => {
  const workers = (args: string[], value: string | undefined) => {
    const config = loadConfig(args, { WORKERS: value });
    assert.ok(config !== "help");
    return config.workers;
  };
  assert.equal(workers([], undefined), navigator.hardwareConcurrency);
  assert.equal(workers([], "3"), 3);
  assert.equal(workers(["--workers", "1"], "3"), 1, "the flag wins over the variable");
  assert.throws(() => workers([], "0"), { name: "TypeError", message: /WORKERS/ });
  assert.throws(() => workers(["--workers", "two"], undefined), { name: "TypeError", message: /--workers/ });
});

Deno.test("loadConfig() reads WORKER_HEAP_MIB, 16 MiB at least", () => {
  const heap = (value: string | undefined) => {
    const config = loadConfig([], { WORKER_HEAP_MIB: value });
    assert.ok(config !== "help");
    return config.workerHeapMib;
  };
  assert.equal(heap("512"), 512);
  assert.ok(heap(undefined) >= 16);
  assert.throws(() => heap("8"), { name: "TypeError", message: /WORKER_HEAP_MIB/ });
});

Deno.test("loadConfig() reads WORKERS_TEST_CRASH as K:N or K:N:heap, unset by default", () => {
  const crash = (value: string | undefined) => {
    const config = loadConfig([], { WORKERS_TEST_CRASH: value });
    assert.ok(config !== "help");
    return config.workersTestCrash;
  };
  assert.equal(crash(undefined), null);
  assert.deepEqual(crash("1:500"), { worker: 1, events: 500, heap: false });
  assert.deepEqual(crash("0:20:heap"), { worker: 0, events: 20, heap: true });
  assert.throws(() => crash("1"), {
    name: "TypeError",
    message: 'WORKERS_TEST_CRASH must be K:N or K:N:heap (worker K, after N events), got "1"',
  });
});
