/**
 * Follows a compacted topic of per-sensor limits (LIMITS_TOPIC) from its start: the newest value of
 * each key (a sensor id), handed on after each fetched batch. The records' meaning is the rules'
 * (src/rules/limits.ts); this reads them.
 *
 * @module
 */
import type { Consumer, Kafka } from "kafkajs";
import type { Logger } from "../log.ts";
import { METADATA_MAX_AGE_MS } from "./kafka.ts";

/** The newest record of a key: its value and where it was read. */
export interface LimitsRecord {
  value: string;
  partition: number;
  offset: string;
}

/**
 * A consumer in a group of its own that never commits (kafkajs has no manual assignment), so every
 * instance reads the whole topic. `onChange` gets the whole table once read to its end, then at most
 * every 250 ms while it changes.
 */
export class LimitsTopicFollower {
  readonly #kafka: Kafka;
  readonly #topic: string;
  readonly #logger: Logger;
  readonly #groupId: string;
  readonly #records = new Map<string, LimitsRecord>();
  readonly #position = new Map<number, number>();
  readonly #onChange: (records: ReadonlyMap<string, LimitsRecord>) => void;
  #consumer: Consumer | null = null;
  #changed = false;
  #timer: ReturnType<typeof setInterval> | null = null;

  constructor(
    kafka: Kafka,
    topic: string,
    groupPrefix: string,
    logger: Logger,
    onChange: (records: ReadonlyMap<string, LimitsRecord>) => void,
  ) {
    this.#kafka = kafka;
    this.#topic = topic;
    this.#logger = logger;
    this.#groupId = `${groupPrefix}.limits-reader.${crypto.randomUUID()}`;
    this.#onChange = onChange;
  }

  /** Starts following; resolves once every record written before the call has been handed on. */
  async start(timeoutMs = 60_000): Promise<void> {
    const admin = this.#kafka.admin();
    await admin.connect();
    let ends: { partition: number; high: string }[];
    try {
      ends = await admin.fetchTopicOffsets(this.#topic);
    } finally {
      await admin.disconnect();
    }
    const consumer = this.#consumer = this.#kafka.consumer({
      groupId: this.#groupId,
      allowAutoTopicCreation: false,
      maxWaitTimeInMs: 100,
      metadataMaxAge: METADATA_MAX_AGE_MS,
    });
    // Batches of only transaction markers never reach eachBatch, but they move the position.
    consumer.on(consumer.events.END_BATCH_PROCESS, (e) => {
      const { partition, lastOffset } = e.payload as { partition: number; lastOffset: string };
      const next = Number(lastOffset) + 1;
      if (next > (this.#position.get(partition) ?? 0)) this.#position.set(partition, next);
    });
    await consumer.connect();
    await consumer.subscribe({ topics: [this.#topic], fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: ({ batch }) => {
        for (const m of batch.messages) {
          const key = m.key?.toString("utf8");
          if (key === undefined || key === "") continue;
          if (m.value === null) this.#records.delete(key);
          else {this.#records.set(key, {
              value: m.value.toString("utf8"),
              partition: batch.partition,
              offset: m.offset,
            });}
        }
        const last = batch.messages.at(-1);
        if (last !== undefined && Number(last.offset) + 1 > (this.#position.get(batch.partition) ?? 0)) {
          this.#position.set(batch.partition, Number(last.offset) + 1);
        }
        if (batch.messages.length > 0) this.#changed = true;
        return Promise.resolve();
      },
    });
    const started = Date.now();
    const behind = () => ends.some((e) => (this.#position.get(e.partition) ?? 0) < Number(e.high));
    while (behind()) {
      if (Date.now() - started > timeoutMs) {
        throw new Error(`Cannot read the limits topic "${this.#topic}" to its end within ${timeoutMs} ms`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    this.#flush();
    this.#logger.info("Limits topic read", { topic: this.#topic, sensors: this.#records.size });
    // Changes are handed on at most every 250 ms: each hand-over rebuilds the rule set's limits.
    this.#timer = setInterval(() => this.#flush(), 250);
  }

  #flush(): void {
    if (!this.#changed) return;
    this.#changed = false;
    this.#onChange(this.#records);
  }

  async stop(): Promise<void> {
    if (this.#timer !== null) clearInterval(this.#timer);
    await this.#consumer?.disconnect();
  }
}
