import type { Config } from "../config.ts";
import type { Logger } from "../log.ts";
import { NON_RULE_FILES } from "../rules/load.ts";
import { NotifierRegistry } from "./registry.ts";
import { notificationDlqRecords } from "./dead_letter.ts";
import type { OutRecord } from "../transport/output.ts";

/** The notifier configuration file of a rules directory: `notifiers.yaml` (or `.yml` when only that exists). */
export async function notifiersFile(rulesDir: string): Promise<string> {
  const dir = rulesDir.replace(/\/+$/, "");
  for (const name of NON_RULE_FILES) {
    try {
      await Deno.stat(`${dir}/${name}`);
      return `${dir}/${name}`;
    } catch { /* try the next name */ }
  }
  return `${dir}/${NON_RULE_FILES[0]}`;
}

/**
 * The notifier instances of this process, from `<rules>/notifiers.yaml`, hot-reloaded. Throws when
 * the file is invalid at startup: running with fewer receivers than configured would drop alerts.
 */
export async function createNotifiers(
  config: Config,
  logger: Logger,
  /** Where dead-lettered notifications are written: the service's output (a DLQ topic or file). */
  deadLetter: (records: OutRecord[]) => Promise<void>,
): Promise<NotifierRegistry> {
  const topics = { alerts: config.topics.alerts, dlq: config.topics.dlq };
  const registry = new NotifierRegistry({
    file: await notifiersFile(config.rulesDir),
    pluginsDir: config.pluginsDir,
    logger: logger.child({ stage: "notifier" }),
    deadLetter: (batch) => deadLetter(notificationDlqRecords(batch, topics)),
  });
  const set = await registry.load();
  logger.info("Notifiers loaded", {
    file: registry.status().file,
    notifiers: [...set.instances.keys()].join(","),
    routes: set.config.routes.length,
  });
  registry.watch();
  return registry;
}
