import assert from "node:assert/strict";
import { redact } from "../../src/log.ts";
import { kafkaSettingsFromEnv } from "../../src/transport/kafka.ts";

Deno.test("kafkaSettingsFromEnv() reads empty KAFKA_* variables as unset", () => {
  const settings = kafkaSettingsFromEnv(["b:1"], {
    KAFKA_CLIENT_ID: "",
    KAFKA_SSL: "",
    KAFKA_SASL_MECHANISM: "",
  });
  assert.deepEqual(settings, { brokers: ["b:1"], clientId: "sensor-rules", ssl: false, sasl: null });
});

Deno.test("kafkaSettingsFromEnv() reads TLS and SASL, and keeps the password out of logs", () => {
  const settings = kafkaSettingsFromEnv(["b:1"], {
    KAFKA_CLIENT_ID: "edge-7",
    KAFKA_SSL: "1",
    KAFKA_SASL_MECHANISM: "SCRAM-SHA-256",
    KAFKA_SASL_USERNAME: "engine",
    KAFKA_SASL_PASSWORD: "pa55-w0rd-kafka",
  });
  assert.deepEqual(settings, {
    brokers: ["b:1"],
    clientId: "edge-7",
    ssl: true,
    sasl: { mechanism: "scram-sha-256", username: "engine", password: "pa55-w0rd-kafka" },
  });
  assert.equal(redact("login pa55-w0rd-kafka"), "login [REDACTED]");
});

Deno.test("kafkaSettingsFromEnv() refuses a KAFKA_SSL or KAFKA_SASL_MECHANISM it does not know, naming it", () => {
  assert.throws(() => kafkaSettingsFromEnv([], { KAFKA_SSL: "yes" }), {
    name: "TypeError",
    message: 'KAFKA_SSL must be one of true, 1, false, 0, got "yes"',
  });
  assert.throws(() => kafkaSettingsFromEnv([], { KAFKA_SASL_MECHANISM: "gssapi" }), {
    name: "TypeError",
    message: 'KAFKA_SASL_MECHANISM must be one of plain, scram-sha-256, scram-sha-512, got "gssapi"',
  });
});
