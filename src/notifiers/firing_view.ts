/**
 * What inhibition knows to be firing, in Kafka mode: every partition of the alerts topic, read from its
 * oldest record and then followed, whatever partitions this instance's notifier consumer owns (a
 * gateway's alert and its sensors' alerts have different keys, so different partitions). Nothing of
 * it is stored: a restart or a rebalance rebuilds it from the topic before the stage notifies anything
 * (`start` resolves once it has read up to the ends it found). kafkajs has no manual partition
 * assignment, so this is a consumer in a group of its own that never commits, as the state changelog's
 * reader is.
 *
 * @module
 */
import type { Consumer, Kafka } from "kafkajs";
import { SensorAlert } from "../contract/schemas.ts";
import type { Logger } from "../log.ts";
import { METADATA_MAX_AGE_MS } from "../source/kafka.ts";

export interface FiringViewOptions {
  kafka: Kafka;
  alertsTopic: string;
  /** Names the reader's own group: `<prefix>.firing-view.<uuid>`. */
  groupPrefix: string;
  logger: Logger;
  /** Each valid alert read, in partition order. */
  observe(alert: SensorAlert): void;
  /** How long `start` waits to reach the ends it found (a broker that answers slowly). */
  timeoutMs?: number;
}

export class FiringView {
  readonly #opts: FiringViewOptions;
  readonly #position = new Map<number, number>();
  #consumer: Consumer | null = null;

  constructor(opts: FiringViewOptions) {
    this.#opts = opts;
  }

  /** Subscribes, and resolves once every partition has been read up to its end at the time of the call. */
  async start(): Promise<void> {
    const { kafka, alertsTopic, logger } = this.#opts;
    // A retried start (the broker went away midway) begins again with a consumer of its own.
    await this.stop();
    const started = Date.now();
    const admin = kafka.admin();
    await admin.connect();
    let ends: Map<number, number>;
    try {
      const offsets = await admin.fetchTopicOffsets(alertsTopic);
      ends = new Map(offsets.map((o) => [o.partition, Number(o.high)]));
      // A partition whose records were all deleted has nothing to read: its start is its end.
      for (const o of offsets) this.#advance(o.partition, Number(o.low));
    } finally {
      await admin.disconnect().catch(() => {});
    }
    const consumer = this.#consumer = kafka.consumer({
      groupId: `${this.#opts.groupPrefix}.firing-view.${crypto.randomUUID()}`,
      allowAutoTopicCreation: false,
      maxWaitTimeInMs: 100,
      // Alerts of an aborted engine transaction were never raised.
      readUncommitted: false,
      metadataMaxAge: METADATA_MAX_AGE_MS,
    });
    // Batches of transaction markers only never reach eachBatch but move the position.
    consumer.on(consumer.events.END_BATCH_PROCESS, (e) => {
      const { partition, lastOffset } = e.payload as { partition: number; lastOffset: string };
      this.#advance(partition, Number(lastOffset) + 1);
    });
    await consumer.connect();
    await consumer.subscribe({ topics: [alertsTopic], fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: ({ batch }) => {
        for (const m of batch.messages) {
          if (m.value === null) continue;
          try {
            const parsed = SensorAlert.safeParse(JSON.parse(m.value.toString("utf8")));
            if (parsed.success) this.#opts.observe(parsed.data);
          } catch {
            // Not an alert: the notifier stage's own consumer dead-letters it.
          }
        }
        const last = batch.messages.at(-1);
        if (last !== undefined) this.#advance(batch.partition, Number(last.offset) + 1);
        return Promise.resolve();
      },
    });
    const timeoutMs = this.#opts.timeoutMs ?? 120_000;
    for (;;) {
      const behind = [...ends].filter(([p, end]) => (this.#position.get(p) ?? 0) < end);
      if (behind.length === 0) break;
      if (Date.now() - started > timeoutMs) {
        throw new Error(
          `Cannot read the firing alerts for inhibition: "${alertsTopic}" partitions ${
            behind.map(([p]) => p).join(", ")
          } not read to their end within ${timeoutMs} ms`,
        );
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    logger.info("Read the firing alerts for inhibition", {
      topic: alertsTopic,
      records: [...ends.values()].reduce((a, b) => a + b, 0),
      ms: Date.now() - started,
    });
  }

  #advance(partition: number, next: number): void {
    if (next > (this.#position.get(partition) ?? 0)) this.#position.set(partition, next);
  }

  async stop(): Promise<void> {
    await this.#consumer?.disconnect().catch(() => {});
    this.#consumer = null;
  }
}
