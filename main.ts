/**
 * `deno task start`: the sensor-event rule engine.
 *
 * @module
 */
import { loadConfig, runMode, USAGE } from "./src/config.ts";
import { env } from "./src/env.ts";
import { logger, print } from "./src/log.ts";
import { startService, type Startup } from "./src/service.ts";
import { printSummary } from "./src/engine/summary.ts";
import { LiveFeed } from "./src/http/live.ts";
import { startHttpServer } from "./src/http/server.ts";
import { inputProblem } from "./src/source/ndjson.ts";
import { whatIfHistory } from "./src/http/whatif.ts";
import { engineWorkers } from "./src/workers/pool.ts";
import { handleUnhandled } from "./src/notifiers/unhandled.ts";

if (import.meta.main) {
  // First, so a plugin's stray promise, at import or later, is logged instead of ending the process;
  // one of the service's own still ends it, in one line (see src/notifiers/unhandled.ts).
  let up = false;
  handleUnhandled({ logger, started: () => up, exit: (code) => Deno.exit(code) });
  let config;
  try {
    config = loadConfig(Deno.args, env);
  } catch (err) {
    print(`${(err as Error).message}\n\n${USAGE}`);
    Deno.exit(2);
  }
  if (config === "help") {
    print(USAGE);
    Deno.exit(0);
  }
  const unreadable = config.input === null ? null : await inputProblem(config.input);
  if (unreadable !== null) {
    logger.error(unreadable);
    Deno.exit(1);
  }
  // Signals are handled from the start, so a stop during startup is still a clean one.
  let firstSignalAt = 0;
  let stopRequested: (() => void) | null = null;
  const stopSignal = new Promise<void>((resolve) => stopRequested = resolve);
  const onSignal = (signal: Deno.Signal) => {
    // `deno task` forwards the terminal's Ctrl-C to us, which already got it from the process
    // group: one keypress arrives twice. Only a signal a second later counts as "exit now".
    const now = Date.now();
    if (firstSignalAt !== 0 && now - firstSignalAt < 1000) return;
    if (firstSignalAt !== 0) {
      logger.warn("Second signal: exiting now", { signal });
      Deno.exit(130);
    }
    firstSignalAt = now;
    logger.info("Shutting down: finishing in-flight work", { signal });
    stopRequested?.();
  };
  // Not for ever, and armed at the signal: with the broker gone (or hanging) a stop waits for the
  // client's request timeouts and retries, during start-up as well (an attempt in flight is not
  // given up). Exiting leaves nothing lost: what was not committed is read again by the partitions'
  // next owner.
  const { shutdownTimeoutMs } = config;
  stopSignal.then(() => {
    const deadline = setTimeout(() => {
      logger.error(
        `Shutdown did not finish within ${
          shutdownTimeoutMs / 1000
        } s (SHUTDOWN_TIMEOUT_MS): exiting; what was not committed is read again`,
      );
      Deno.exit(1);
    }, shutdownTimeoutMs);
    Deno.unrefTimer(deadline);
  });
  Deno.addSignalListener("SIGINT", () => onSignal("SIGINT"));
  Deno.addSignalListener("SIGTERM", () => onSignal("SIGTERM"));
  // The HTTP server comes first, so health checks answer while Kafka connects and joins.
  const live = new LiveFeed();
  // What `POST /api/whatif` runs a rule over: the events topic, or (no Kafka) the events kept in memory.
  const whatIf = whatIfHistory(config, logger);
  const giveUp = new AbortController();
  stopSignal.then(() => giveUp.abort());
  const startup: Startup = { reason: null, signal: giveUp.signal };
  let http;
  try {
    http = await startHttpServer({
      ...config.http,
      logger,
      live,
      alertsTopic: config.topics.alerts,
      mode: runMode(config),
      startup,
      history: whatIf.history,
    });
  } catch (err) {
    logger.error((err as Error).message, { error: (err as Error).cause });
    Deno.exit(1);
  }
  if (config.input === null) print(`Dashboard: ${http.url}`);
  let service;
  try {
    service = await startService({
      config,
      logger,
      observer: whatIf.observe(live),
      startup,
      workers: engineWorkers,
      attach: (s) => http.attach(s),
    });
  } catch (err) {
    await http.close();
    if (giveUp.signal.aborted) {
      logger.info("Stopped during start-up");
      Deno.exit(0);
    }
    // One line, no stack: a missing rules directory, a topic the service cannot work with, an
    // authentication the broker refused.
    logger.error(`Cannot start: ${(err as Error)?.message ?? String(err)}`);
    Deno.exit(1);
  }
  http.attach(service);
  up = true;
  stopSignal.then(() => service.stop()).catch((err) => {
    logger.error("Shutdown failed", { error: err });
    Deno.exit(1);
  });
  await service.done;
  await http.close();
  printSummary(service);
  const failure = service.sourceFailure?.() ?? null;
  if (failure !== null) {
    logger.error(failure);
    Deno.exit(1);
  }
  Deno.exit(0);
}
