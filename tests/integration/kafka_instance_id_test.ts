/**
 * Two instances started with the same INSTANCE_ID share a transactional id and fence each other:
 * the service says so in a line an operator can act on.
 */
import assert from "node:assert/strict";
import { createTopics, produce, topicEnv, uniqueNames } from "../helpers/kafka.ts";
import { type RunningService, startService } from "../helpers/service.ts";

function events(from: number, count: number) {
  return Array.from({ length: count }, (_, i) => {
    const e = {
      event_id: `shared-${from + i}`,
      sensor_id: `s-${(from + i) % 12}`,
      sensor_type: "temperature",
      value: 21,
      unit: "°C",
      timestamp: new Date().toISOString(),
    };
    return { key: `temperature:${e.sensor_id}`, value: JSON.stringify(e) };
  });
}

// The log is JSON lines: the id's quotes are escaped.
const FENCED =
  /Another instance uses the transactional id \\"[^"]*-same\\" and fenced this one: give every instance its own INSTANCE_ID/;

Deno.test("two instances with the same INSTANCE_ID: the fenced one says so in one line", async () => {
  const n = uniqueNames("shared-instance");
  await createTopics([n.events], 4);
  const env = {
    ...topicEnv(n),
    SENSOR_PARTITIONS: "4",
    INSTANCE_ID: "same",
    KAFKA_SESSION_TIMEOUT_MS: "6000",
  };
  const services: RunningService[] = [];
  try {
    const a = startService(env, ["--role", "engine"]);
    services.push(a);
    await a.waitForLine(/Joined consumer group/, 60_000);
    const b = startService(env, ["--role", "engine"]);
    services.push(b);
    await b.waitForLine(/Joined consumer group/, 60_000);
    // Both commit transactions while events arrive: the second one's producer fenced the first's.
    const seen = () => services.some((s) => FENCED.test(s.stderr()));
    for (let i = 0; i < 60 && !seen(); i++) {
      await produce(n.events, events(i * 20, 20));
      await new Promise((r) => setTimeout(r, 500));
    }
    assert.ok(
      seen(),
      `no instance said it was fenced:\n${a.stderr().slice(-2000)}\n${b.stderr().slice(-2000)}`,
    );
    for (const s of services) {
      assert.doesNotMatch(s.stderr(), /Uncaught|^\s+at /m, "no uncaught error, no stack trace");
      // Said once per fence, by the service: not again by kafkajs, request by request.
      assert.doesNotMatch(s.stderr(), /old epoch/);
    }
  } finally {
    for (const s of services) await s.stop();
  }
});
