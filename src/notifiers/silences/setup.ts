/**
 * The silences of each mode, and the alerts they hold: the compacted topic with Kafka, local files
 * without.
 *
 * @module
 */
import type { Kafka } from "kafkajs";
import type { Config } from "../../config.ts";
import type { Logger } from "../../log.ts";
import type { Output } from "../../transport/output.ts";
import { FileSilenceLog } from "./file.ts";
import { SilenceGate } from "./gate.ts";
import { HELD_KEY_PREFIX, HeldAlerts, type HeldRecord } from "./held.ts";
import { KafkaSilenceLog } from "./kafka.ts";
import { Silences } from "./store.ts";

export function kafkaSilences(kafka: Kafka, output: Output, config: Config, logger: Logger): Silences {
  return new Silences({
    log: new KafkaSilenceLog({
      kafka,
      topic: config.silences.topic,
      output,
      groupPrefix: `${config.groups.notifier}-silences`,
      logger,
      accept: (key) => !key.startsWith(HELD_KEY_PREFIX),
    }),
    logger,
  });
}

export function fileSilences(config: Config, logger: Logger): Silences {
  return new Silences({ log: new FileSilenceLog(config.silences.file), logger });
}

/** The notifier stage's gate, its held alerts on the silences topic under keys of their own. */
export function kafkaSilenceGate(
  silences: Silences,
  kafka: Kafka,
  output: Output,
  config: Config,
  logger: Logger,
): SilenceGate {
  const log = new KafkaSilenceLog<HeldRecord>({
    kafka,
    topic: config.silences.topic,
    output,
    groupPrefix: `${config.groups.notifier}-held`,
    logger,
    what: "held alerts",
    accept: (key) => key.startsWith(HELD_KEY_PREFIX),
  });
  return new SilenceGate(silences, logger, new HeldAlerts(log, logger));
}

/** The gate without Kafka: held alerts in a file beside the silences file (`silences.held.json`). */
export function fileSilenceGate(silences: Silences, config: Config, logger: Logger): SilenceGate {
  const path = config.silences.file.replace(/(\.json)?$/, ".held.json");
  return new SilenceGate(silences, logger, new HeldAlerts(new FileSilenceLog<HeldRecord>(path), logger));
}
