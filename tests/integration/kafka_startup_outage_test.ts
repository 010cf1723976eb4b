/**
 * A service waits for its broker: started before it, or through an outage mid-stream. The test runs
 * its own throwaway broker (scripts/kafka/kafka.sh), which it starts late and stops; the broker's
 * address is known before it runs (`kafka.sh prepare` formats the dir and picks its ports).
 */
import assert from "node:assert/strict";
import { kafkaSh, produce, readTopic, topicEnv, uniqueNames, waitFor } from "../helpers/kafka.ts";
import { httpUrl, startService } from "../helpers/service.ts";

async function readiness(
  url: string,
): Promise<{ status: number; body: { ready: boolean; reason?: string } }> {
  const res = await fetch(`${url}/readyz`);
  return { status: res.status, body: await res.json() };
}

function event(id: string) {
  const e = {
    event_id: id,
    sensor_id: `s-${id}`,
    sensor_type: "temperature",
    value: 45,
    unit: "°C",
    timestamp: new Date().toISOString(),
  };
  return { key: `temperature:${e.sensor_id}`, value: JSON.stringify(e) };
}

async function alertFor(topic: string, eventId: string): Promise<number> {
  const alerts = await readTopic(
    topic,
    (values) => values.some((v) => JSON.parse(v).event_id === eventId),
    60_000,
  );
  return alerts.filter((a) => {
    const alert = JSON.parse(a.value);
    return alert.event_id === eventId && alert.state === "firing";
  }).length;
}

/** Lines a person would read as a crash: stack frames, uncaught errors, stack fields in the log. */
function assertNoStackTraces(stderr: string): void {
  assert.doesNotMatch(stderr, /^\s+at /m, "no stack frame on stderr");
  assert.doesNotMatch(stderr, /Uncaught/, "no uncaught error");
  assert.doesNotMatch(stderr, /"stack":/, "no stack field in a log line");
}

Deno.test("a service started before its broker waits for it, says why it is not ready, and survives an outage mid-stream", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sensor-rules-late-broker-" });
  // Formats the dir and picks its ports; the broker is started later on that port.
  const address = await kafkaSh(dir, "prepare");
  const previous = Deno.env.get("KAFKA_BROKERS")!;
  // The helpers (produce, readTopic) read KAFKA_BROKERS: point them at this test's broker.
  Deno.env.set("KAFKA_BROKERS", address);
  const names = uniqueNames("late-broker");
  /** The broker's process while it is stopped (SIGSTOP). */
  let frozen: number | null = null;
  const svc = startService({
    ...topicEnv(names, address),
    SENSOR_PARTITIONS: "2",
    KAFKA_SESSION_TIMEOUT_MS: "6000",
    SHUTDOWN_TIMEOUT_MS: "3000",
  }, ["--role", "engine"]);
  try {
    const url = await httpUrl(svc);
    // Two attempts: it is still waiting after the first failed one, not giving up.
    await svc.waitForLine(/"msg":"Waiting for Kafka".*"attempt":2/, 60_000);
    const waiting = await readiness(url);
    assert.equal(waiting.status, 503);
    assert.equal(waiting.body.ready, false);
    assert.equal(waiting.body.reason, `waiting for Kafka at ${address}: connection refused`);
    assert.equal((await fetch(`${url}/healthz`)).status, 200, "the HTTP server stays up");

    await kafkaSh(dir, "start");
    await waitFor("the service to be ready", async () => (await readiness(url)).status === 200, 120_000);
    await produce(names.events, [event("before-outage")]);
    assert.equal(await alertFor(names.alerts, "before-outage"), 1);

    // The broker goes away mid-stream: the service says so, waits, and carries on when it is back.
    await kafkaSh(dir, "kill");
    const down = await waitFor("the service to notice the outage", async () => {
      const r = await readiness(url);
      return r.status === 503 ? r : undefined;
    }, 120_000);
    assert.match(down.body.reason ?? "", /Kafka/);
    await kafkaSh(dir, "start");
    await waitFor(
      "the service to be ready again",
      async () => (await readiness(url)).status === 200,
      120_000,
    );
    await produce(names.events, [event("after-outage")]);
    assert.equal(await alertFor(names.alerts, "after-outage"), 1);
    assert.equal(await alertFor(names.alerts, "before-outage"), 1, "no alert twice after the outage");

    // Stopped while the broker hangs (frozen: every request waits for its timeout): it does not
    // wait for the client's requests and retries (a minute and more) but for SHUTDOWN_TIMEOUT_MS, and
    // says so in one line, exit code 1.
    frozen = Number((await Deno.readTextFile(`${dir}/broker.pid`)).trim());
    Deno.kill(frozen, "SIGSTOP");
    const status = await svc.stop();
    assert.equal(status.code, 1, svc.stderr().slice(-3000));
    assert.match(svc.stderr(), /"msg":"Shutdown did not finish within 3 s \(SHUTDOWN_TIMEOUT_MS\)/);
    assertNoStackTraces(svc.stderr());
  } catch (err) {
    // What the service said: once, in CI, its HTTP server was gone (connection refused) 16 s in.
    throw new Error(`${(err as Error).message}\n--- the service's stderr ---\n${svc.stderr().slice(-6000)}`, {
      cause: err,
    });
  } finally {
    if (frozen !== null) Deno.kill(frozen, "SIGCONT");
    await svc.stop();
    Deno.env.set("KAFKA_BROKERS", previous);
    await kafkaSh(dir, "down", "--clean");
  }
});

Deno.test("a service waiting for its broker stops cleanly on SIGTERM", async () => {
  const names = uniqueNames("never-broker");
  // Port 1: nothing listens there.
  const svc = startService({ ...topicEnv(names, "127.0.0.1:1") }, ["--role", "engine"]);
  await svc.waitForLine(/"msg":"Waiting for Kafka"/, 60_000);
  const status = await svc.stop("SIGTERM");
  assert.equal(status.code, 0, svc.stderr().slice(-3000));
  assert.match(svc.stderr(), /"msg":"Stopped during start-up"/);
  assertNoStackTraces(svc.stderr());
});

Deno.test("a setting that waiting cannot fix stops the service before it waits, naming the setting, exit code 2", async () => {
  const names = uniqueNames("bad-sasl");
  const svc = startService({ ...topicEnv(names, "127.0.0.1:1"), KAFKA_SASL_MECHANISM: "bogus" }, [
    "--role",
    "engine",
  ]);
  // It exits by itself; stop() then only collects the rest of its output.
  await svc.child.status;
  const status = await svc.stop();
  const stderr = svc.stderr();
  const output = svc.stdout() + stderr;
  // The settings are checked before anything starts (a usage error, as for any bad flag or variable).
  assert.equal(status.code, 2, output.slice(-3000));
  assert.match(output.trim().split("\n")[0]!, /^KAFKA_SASL_MECHANISM must be one of .*got "bogus"$/);
  assert.doesNotMatch(output, /Waiting for Kafka/, "it does not wait for a broker first");
  assertNoStackTraces(stderr);
});
