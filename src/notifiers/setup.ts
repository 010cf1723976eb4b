import consolePlugin from "../../plugins/console.ts";
import type { Logger } from "../log.ts";
import type { NotifierInstance } from "./dispatcher.ts";

/** The notifier instances of this process. */
export async function createNotifiers(logger: Logger): Promise<NotifierInstance[]> {
  const options = consolePlugin.options.parse({});
  const notifier = await consolePlugin.create(options, {
    name: "console",
    logger: logger.child({ notifier: "console" }),
  });
  return [{ name: "console", plugin: "console", notifier }];
}
