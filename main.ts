/**
 * `deno task start`: the sensor-event rule engine.
 *
 * @module
 */
import { loadConfig, USAGE } from "./src/config.ts";
import { env } from "./src/env.ts";
import { logger, print } from "./src/log.ts";
import { printSummary, startService } from "./src/service.ts";

if (import.meta.main) {
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
  Deno.addSignalListener("SIGINT", () => onSignal("SIGINT"));
  Deno.addSignalListener("SIGTERM", () => onSignal("SIGTERM"));
  const service = await startService({ config, logger });
  stopSignal.then(() => service.stop()).catch((err) => {
    logger.error("Shutdown failed", { error: err });
    Deno.exit(1);
  });
  await service.done;
  printSummary(service);
  Deno.exit(0);
}
