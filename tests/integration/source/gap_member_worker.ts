/**
 * A member of a gap test's group in a Worker, so that the test can kill it (`Worker.terminate`: none
 * of its shutdown runs) while it reports a gap: its report never ends, and it says "gap" when it
 * begins. Told `{ brokers, group, topic }` in its first message.
 */
import { createLogger } from "../../../src/log.ts";
import { KafkaSource } from "../../../src/source/kafka.ts";
import { createKafka, kafkaSettingsFromEnv } from "../../../src/transport/kafka.ts";

declare const self: Worker;

self.onmessage = async (e: MessageEvent<{ brokers: string[]; group: string; topic: string }>) => {
  const logger = createLogger({ level: "error", sink: { write: () => {}, pretty: false } });
  const source = new KafkaSource({
    kafka: createKafka(kafkaSettingsFromEnv(e.data.brokers, {}), logger),
    groupId: e.data.group,
    topic: e.data.topic,
    logger,
    commitIntervalMs: 50,
    sessionTimeoutMs: 6000,
    handle: () => Promise.resolve(),
    onGap: () => {
      self.postMessage("gap");
      return new Promise<void>(() => {});
    },
  });
  await source.start();
  self.postMessage("started");
};
