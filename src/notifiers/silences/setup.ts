/**
 * The silences of each mode: the compacted topic with Kafka, the local file without.
 *
 * @module
 */
import type { Kafka } from "kafkajs";
import type { Config } from "../../config.ts";
import type { Logger } from "../../log.ts";
import type { Output } from "../../transport/output.ts";
import { FileSilenceLog } from "./file.ts";
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
    }),
    logger,
  });
}

export function fileSilences(config: Config, logger: Logger): Silences {
  return new Silences({ log: new FileSilenceLog(config.silences.file), logger });
}
