/**
 * The notifier stage: alerts from the `alerts` topic (or the in-process queue) to the Dispatcher.
 * A batch is handed over without waiting for its deliveries; its offset is committed once every
 * alert in it is delivered or dead-lettered (the source's `commitAfter`, as the engine stage does).
 * A receiver that holds `max_queued` notifications sheds new ones to the DLQ (`on_full: dead_letter`,
 * the default) or pauses only the partitions that fed it (`on_full: pause`). At a rebalance the stage
 * waits only for the tries in flight (see `REBALANCE_TRY_WAIT_MS`), not for a receiver that is down.
 *
 * @module
 */
import type { Kafka } from "kafkajs";
import { SensorAlert } from "../contract/schemas.ts";
import { formatIssues } from "../decode/decode.ts";
import { buildDlqRecord } from "../dlq/record.ts";
import type { Logger } from "../log.ts";
import type { InputRecord } from "../contract/records.ts";
import { type ConsumerOptions, KafkaSource } from "../source/kafka.ts";
import type { Output, OutRecord } from "../transport/output.ts";
import type { Dispatcher } from "./dispatcher.ts";
import type { AsyncQueue } from "../transport/queue.ts";
import { TakenOn } from "./taken.ts";

/**
 * How long a hand-over at a rebalance waits for the tries in flight to end (their deliveries are then
 * committed, not sent again by the partitions' next owners). Nothing else is waited for: deliveries
 * sleeping in retry backoff, behind an open breaker or queued behind a receiver's in-flight window
 * go on after the rejoin (a partition this member keeps is not handed on again, see `TakenOn`). Waiting
 * for them (up to 15 s with a 30 s session) held every partition of the group, so every receiver,
 * while one receiver was down. A receiver that answers at all answers a try well within this; one
 * still running then hangs, and waiting for it up to its timeout (15 s by default) is that stall again.
 */
export const REBALANCE_TRY_WAIT_MS = 2_000;

export interface KafkaNotifierStageOptions {
  kafka: Kafka;
  dispatcher: Dispatcher;
  /** Where records that are not valid alerts go (the DLQ topic). */
  output: Output;
  groupId: string;
  alertsTopic: string;
  dlqTopic: string;
  logger: Logger;
  sessionTimeoutMs?: number;
  maxBytesPerPartition?: number;
  /** Alerts deleted before the stage read them (retention): reported per gap. */
  onGap?: ConsumerOptions["onGap"];
  /** The alerts-topic partitions this instance owns, at each join. */
  onAssign?: ConsumerOptions["onAssign"];
  /**
   * How long a stop waits for the batches' deliveries before it commits what is done: longer than
   * the dispatcher lets a try in flight finish, or a delivery that finishes is not committed and is
   * sent again by the next owner. A rebalance waits less (see `REBALANCE_TRY_WAIT_MS`).
   */
  stopGraceMs?: number;
}

/** The notifier stage's consumer of the alerts topic. */
export function kafkaNotifierStage(opts: KafkaNotifierStageOptions): KafkaSource {
  const { dispatcher, output, logger } = opts;
  const paused = new Set<number>();
  const taken = new TakenOn();
  const source: KafkaSource = new KafkaSource({
    kafka: opts.kafka,
    ...(opts.sessionTimeoutMs !== undefined ? { sessionTimeoutMs: opts.sessionTimeoutMs } : {}),
    ...(opts.maxBytesPerPartition !== undefined ? { maxBytesPerPartition: opts.maxBytesPerPartition } : {}),
    groupId: opts.groupId,
    topic: opts.alertsTopic,
    logger,
    // Batches waiting for a slow receiver must not stall the other partitions: the receivers'
    // `max_queued` bounds what is unfinished, per receiver, instead.
    maxPendingBatches: Number.POSITIVE_INFINITY,
    ...(opts.onGap !== undefined ? { onGap: opts.onGap } : {}),
    onAssign: (partitions) => {
      taken.keepOnly(partitions);
      opts.onAssign?.(partitions);
    },
    onRecreated: (partitions) => Promise.resolve(taken.forget(partitions)),
    ...(opts.stopGraceMs !== undefined ? { stopGraceMs: opts.stopGraceMs } : {}),
    settledAtRebalance: () => settledWithin(dispatcher, REBALANCE_TRY_WAIT_MS),
    handle: (records, ctx) => {
      const partition = records[0]?.partition;
      // Read again after a rejoin: what this member handed on already is not handed on twice.
      const { fresh, pending } = typeof partition === "number"
        ? taken.split(partition, records)
        : { fresh: records, pending: [] };
      const { alerts, invalid } = parseAlerts(fresh, opts.dlqTopic);
      const { done, full } = dispatcher.submit(alerts, partition ?? undefined);
      // The output retries until it is closed; the offset waits for the DLQ records and every delivery.
      const durable = invalid.length === 0 ? done : Promise.all([output.send(invalid), done]).then(() => {});
      const first = fresh[0]?.offset ?? null;
      const last = fresh.at(-1)?.offset ?? null;
      if (typeof partition === "number" && first !== null && last !== null) {
        taken.add(partition, BigInt(first), BigInt(last), durable);
      }
      ctx.commitAfter(pending.length === 0 ? durable : Promise.all([...pending, durable]).then(() => {}));
      if (full.length > 0 && typeof partition === "number" && !paused.has(partition)) {
        const tp = [{ topic: opts.alertsTopic, partitions: [partition] }];
        paused.add(partition);
        source.consumer.pause(tp);
        logger.warn("A receiver's queue is full: pausing the partition that feeds it", {
          partition,
          receivers: full.join(","),
        });
        dispatcher.whenRoom(full).then(() => {
          paused.delete(partition);
          try {
            source.consumer.resume(tp);
            logger.info("Resumed the partition", { partition });
          } catch (error) {
            // The consumer stopped meanwhile: a new run starts unpaused.
            logger.debug("Could not resume the partition", { partition, error });
          }
        });
      }
      return Promise.resolve();
    },
  });
  return source;
}

/**
 * Resolves once the dispatcher's tries in flight now have settled, or after `maxMs`, and the batches
 * they completed have reached the source (a macrotask later: the chain from a delivery to a batch's
 * commit is promises).
 */
async function settledWithin(dispatcher: Dispatcher, maxMs: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([dispatcher.settled(), new Promise<void>((r) => timer = setTimeout(r, maxMs))]);
  clearTimeout(timer);
  await new Promise((r) => setTimeout(r, 0));
}

/**
 * The notifier stage in embedded and replay modes: takes batches from the in-process queue as they
 * come and marks each done once delivered or dead-lettered (what `queue.drain` waits for). Nothing
 * pauses here: the engine's alerts are in memory either way.
 */
export async function localNotifierStage(
  queue: AsyncQueue<SensorAlert>,
  dispatcher: Dispatcher,
  logger: Logger,
): Promise<void> {
  for (let batch = await queue.take(); batch.length > 0; batch = await queue.take()) {
    const count = batch.length;
    dispatcher.submit(batch).done
      .catch((error) => logger.debug("Notifications given up at stop", { error }))
      .finally(() => queue.done(count));
  }
}

/** Alerts read back from the topic; a record that is not a valid alert is dead-lettered, not dropped. */
export function parseAlerts(
  records: InputRecord[],
  dlqTopic: string,
): { alerts: SensorAlert[]; invalid: OutRecord[] } {
  const alerts: SensorAlert[] = [];
  const invalid: OutRecord[] = [];
  for (const r of records) {
    let error: string;
    try {
      const text = typeof r.value === "string"
        ? r.value
        : new TextDecoder().decode(r.value ?? new Uint8Array());
      const parsed = SensorAlert.safeParse(JSON.parse(text));
      if (parsed.success) {
        alerts.push(parsed.data);
        continue;
      }
      error = `Invalid alert: ${formatIssues(parsed.error.issues)}`;
    } catch (err) {
      error = `Invalid alert: ${(err as Error).message}`;
    }
    // Keyed as the DLQ record keeps the key, so the two always agree.
    const dlq = buildDlqRecord({ ...r, stage: "notify", error });
    invalid.push({ topic: dlqTopic, key: dlq.original_key, value: JSON.stringify(dlq) });
  }
  return { alerts, invalid };
}
