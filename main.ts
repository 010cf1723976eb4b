/**
 * `deno task start`: the sensor-event rule engine.
 *
 * @module
 */
import { loadConfig, USAGE } from "./src/config.ts";
import { logger, print } from "./src/log.ts";
import { printSummary, startService } from "./src/service.ts";

if (import.meta.main) {
  let config;
  try {
    config = loadConfig(Deno.args, Deno.env.toObject());
  } catch (err) {
    print(`${(err as Error).message}\n\n${USAGE}`);
    Deno.exit(2);
  }
  if (config === "help") {
    print(USAGE);
    Deno.exit(0);
  }
  const service = await startService({ config, logger });
  let signals = 0;
  const onSignal = (signal: Deno.Signal) => {
    signals++;
    if (signals > 1) {
      logger.warn("Second signal: exiting now", { signal });
      Deno.exit(130);
    }
    logger.info("Shutting down: finishing in-flight work", { signal });
    service.stop().catch((err) => logger.error("Shutdown failed", { error: err }));
  };
  Deno.addSignalListener("SIGINT", () => onSignal("SIGINT"));
  Deno.addSignalListener("SIGTERM", () => onSignal("SIGTERM"));
  await service.done;
  printSummary(service);
  Deno.exit(0);
}
