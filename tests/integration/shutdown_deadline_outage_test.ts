/**
 * SHUTDOWN_TIMEOUT_MS bounds a stop that comes while the service is still starting, too: a broker
 * that hangs (frozen with SIGSTOP: it accepts connections and answers nothing) kept a start-up
 * attempt waiting for the client's request timeout (30 s) before the stop was noticed, past a
 * supervisor's SIGKILL. The test runs its own throwaway broker (scripts/kafka/kafka.sh): the shared
 * one is never stopped.
 */
import assert from "node:assert/strict";
import { kafkaSh, topicEnv, uniqueNames } from "../helpers/kafka.ts";
import { httpUrl, startService } from "../helpers/service.ts";

Deno.test("a stop during start-up with the broker hanging exits within SHUTDOWN_TIMEOUT_MS", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sensor-rules-frozen-start-" });
  const previousWarmup = Deno.env.get("KAFKA_WARMUP");
  Deno.env.set("KAFKA_WARMUP", "0");
  let frozen: number | null = null;
  let svc: ReturnType<typeof startService> | null = null;
  try {
    const address = await kafkaSh(dir, "up");
    frozen = Number((await Deno.readTextFile(`${dir}/broker.pid`)).trim());
    Deno.kill(frozen, "SIGSTOP");
    svc = startService({
      ...topicEnv(uniqueNames("frozen-start"), address),
      SHUTDOWN_TIMEOUT_MS: "3000",
    }, ["--role", "engine"]);
    await httpUrl(svc);
    // Its first attempt is under way: connected, waiting for the frozen broker's answer.
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    const signalled = Date.now();
    const status = await svc.stop();
    const took = Date.now() - signalled;
    assert.ok(
      took < 8_000,
      `exited ${took} ms after SIGTERM (SHUTDOWN_TIMEOUT_MS 3 s)\n${svc.stderr().slice(-3000)}`,
    );
    assert.equal(status.code, 1, svc.stderr().slice(-3000));
    assert.match(svc.stderr(), /"msg":"Shutdown did not finish within 3 s \(SHUTDOWN_TIMEOUT_MS\)/);
  } finally {
    if (frozen !== null) Deno.kill(frozen, "SIGCONT");
    await svc?.stop();
    if (previousWarmup === undefined) Deno.env.delete("KAFKA_WARMUP");
    else Deno.env.set("KAFKA_WARMUP", previousWarmup);
    await kafkaSh(dir, "down", "--clean");
  }
});
