/**
 * `deno task dlq:replay`: re-sends notifications that failed for good (`stage: notify` DLQ records)
 * to the notifier they failed on, as configured now. Reads the DLQ topic with Kafka, the local DLQ
 * file otherwise. Idempotent: the newest record of a notification decides (one re-send per
 * notification however often it was dead-lettered), a delivered re-send is marked in the DLQ so the
 * next replay skips it, and a group is re-sent as one notification with its delivery id.
 *
 * @module
 */
import { usage } from "../config/docs.ts";
import { type Env, readSettings } from "../config/setting.ts";
import { commands } from "../config/settings.ts";
import { DlqRecord, SensorAlert } from "../contract/schemas.ts";
import { env as processEnv } from "../env.ts";
import { type Logger, logger as processLogger, print } from "../log.ts";
import { durationMs } from "../rules/schema.ts";
import { createKafka, KafkaOutput, kafkaSettingsFromEnv } from "../transport/kafka.ts";
import type { OutRecord } from "../transport/output.ts";
import { notificationDlqRecords, type NotifyDlqFields } from "./dead_letter.ts";
import { Dispatcher } from "./dispatcher.ts";
import type { Notification } from "./plugin.ts";
import { NotifierRegistry } from "./registry.ts";
import { notifiersFile } from "./setup.ts";
import { handleUnhandled } from "./unhandled.ts";

export interface ReplayFilter {
  notifier?: string;
  rule?: string;
  since?: Date;
}

export interface ReplayItem {
  notifier: string;
  notification: Notification;
  /** The id of the delivery that failed: a group's, shared by its notifications. */
  deliveryId: string;
  failedAt: string;
  error: string;
}

/** What the DLQ holds to re-send, and what an earlier replay delivered already. */
export interface ReplaySelection {
  items: ReplayItem[];
  /** Notifications whose newest record is a delivered re-send. */
  delivered: number;
}

/** The field of the marker record a delivered re-send leaves in the DLQ. */
export const REPLAYED = "replayed";

/**
 * The notify-stage records among `values` (DLQ record texts, oldest first) that pass the filter: per
 * notifier and notification id the newest record only, none when that one marks a delivered re-send.
 */
export function selectReplays(values: string[], filter: ReplayFilter): ReplaySelection {
  const newest = new Map<string, { item: ReplayItem; replayed: boolean }>();
  for (const v of values) {
    let record: DlqRecord & Partial<NotifyDlqFields> & { [REPLAYED]?: unknown };
    try {
      record = DlqRecord.parse(JSON.parse(v)) as typeof record;
    } catch {
      continue;
    }
    if (record.stage !== "notify" || typeof record.notifier !== "string" || record.original_value === null) {
      continue;
    }
    const alert = SensorAlert.safeParse(JSON.parse(record.original_value));
    if (!alert.success) continue;
    if (filter.notifier !== undefined && record.notifier !== filter.notifier) continue;
    if (filter.rule !== undefined && alert.data.rule_id !== filter.rule) continue;
    if (filter.since !== undefined && Date.parse(record.failed_at) < filter.since.getTime()) continue;
    const id = record.notification_id ?? `${alert.data.alert_id}.${alert.data.state}`;
    newest.set(`${record.notifier}\0${id}`, {
      item: {
        notifier: record.notifier,
        notification: { id, alert: alert.data },
        deliveryId: record.delivery_id ?? id,
        failedAt: record.failed_at,
        error: record.error,
      },
      replayed: record[REPLAYED] === true,
    });
  }
  const all = [...newest.values()];
  return {
    items: all.filter((x) => !x.replayed).map((x) => x.item),
    delivered: all.filter((x) => x.replayed).length,
  };
}

/** The marker that a notification's re-send was delivered: its failure record again, flagged. */
export function replayedRecord(item: ReplayItem, topics: { alerts: string; dlq: string }): OutRecord {
  const [record] = notificationDlqRecords([{
    ...item.notification,
    failure: {
      notifier: item.notifier,
      plugin: "replay",
      delivery_id: item.deliveryId,
      attempts: [],
      error: `Re-sent by dlq:replay and delivered (it had failed with: ${item.error})`,
    },
  }], topics);
  const value = JSON.parse(record!.value!);
  return { ...record!, value: JSON.stringify({ ...value, [REPLAYED]: true }) };
}

/** Every record of `topic` up to its end when called, without committing anything. */
async function readDlqTopic(brokers: string[], topic: string, logger: Logger): Promise<string[]> {
  const kafka = createKafka(kafkaSettingsFromEnv(brokers), logger);
  const admin = kafka.admin();
  await admin.connect();
  const ends = await admin.fetchTopicOffsets(topic);
  await admin.disconnect();
  const remaining = new Map(
    ends.filter((e) => Number(e.high) > Number(e.low)).map((e) => [e.partition, Number(e.high)]),
  );
  const values: string[] = [];
  if (remaining.size === 0) return values;
  const consumer = kafka.consumer({ groupId: `dlq-replay-${crypto.randomUUID()}`, maxWaitTimeInMs: 200 });
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  let resolve!: () => void;
  const done = new Promise<void>((r) => resolve = r);
  await consumer.run({
    autoCommit: false,
    eachMessage: ({ partition, message }) => {
      const end = remaining.get(partition);
      if (end !== undefined && Number(message.offset) < end) values.push(message.value?.toString() ?? "");
      if (end !== undefined && Number(message.offset) >= end - 1) remaining.delete(partition);
      if (remaining.size === 0) resolve();
      return Promise.resolve();
    },
  });
  const timer = setTimeout(resolve, 60_000);
  await done;
  clearTimeout(timer);
  await consumer.disconnect();
  return values;
}

export async function main(args: string[], env: Env = processEnv): Promise<number> {
  const USAGE = usage(commands.dlqReplay);
  let v;
  try {
    v = readSettings(commands.dlqReplay.settings, args, env);
  } catch (err) {
    print(`${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (v.help) {
    print(USAGE);
    return 0;
  }
  const filter: ReplayFilter = {};
  if (v.notifier !== null) filter.notifier = v.notifier;
  if (v.rule !== null) filter.rule = v.rule;
  if (v.since !== null) {
    const s = v.since;
    const at = /^\d+(?:\.\d+)?(?:ms|s|m|h|d)$/.test(s) ? new Date(Date.now() - durationMs(s)) : new Date(s);
    if (Number.isNaN(at.getTime())) {
      print(`--since must be an ISO time or a duration like "2h", got "${s}"\n\n${USAGE}`);
      return 2;
    }
    filter.since = at;
  }
  const { brokers, dlqTopic, dlqFile } = v;
  const logger = processLogger.child({ stage: "dlq-replay" });

  let texts: string[];
  if (brokers.length > 0) {
    texts = await readDlqTopic(brokers, dlqTopic, logger);
  } else {
    try {
      texts = (await Deno.readTextFile(dlqFile)).split("\n").filter((l) => l.trim() !== "");
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
      texts = [];
    }
  }
  const { items, delivered: already } = selectReplays(texts, filter);
  const source = brokers.length > 0 ? `topic ${dlqTopic}` : dlqFile;
  print(
    `${items.length} notification(s) to re-send from ${source}` +
      (already > 0 ? ` (${already} delivered by an earlier replay, skipped)` : ""),
  );
  if (v.dryRun) {
    for (const i of items) {
      print(`${i.failedAt} ${i.notifier} ${i.notification.alert.rule_id} ${i.notification.id} ${i.error}`);
    }
    return 0;
  }
  if (items.length === 0) return 0;

  const topics = { alerts: v.alertsTopic, dlq: dlqTopic };
  const output = brokers.length > 0
    ? new KafkaOutput(createKafka(kafkaSettingsFromEnv(brokers), logger))
    : null;
  const writeDlq = async (records: OutRecord[]) => {
    if (output !== null) return await output.send(records);
    await Deno.writeTextFile(dlqFile, records.map((r) => r.value).join("\n") + "\n", { append: true });
  };
  const registry = new NotifierRegistry({
    file: await notifiersFile(v.rulesDir),
    pluginsDir: v.pluginsDir,
    logger,
    // The dlq notifier writes where this replay reads.
    deadLetter: (batch) => writeDlq(notificationDlqRecords(batch, topics)),
  });
  const set = await registry.load();
  const dispatcher = new Dispatcher({
    notifiers: () => set,
    logger,
    deadLetter: writeDlq,
    dlqTopic,
    alertsTopic: topics.alerts,
  });
  let skipped = 0;
  let delivered = 0;
  let deadLettered = 0;
  // A group goes out again as one notification with its delivery id, as it failed.
  const deliveries = Map.groupBy(items, (i) => `${i.notifier}\0${i.deliveryId}`);
  await Promise.all([...deliveries.values()].map(async (list) => {
    const { notifier, deliveryId } = list[0]!;
    if (!set.instances.has(notifier)) {
      skipped += list.length;
      return;
    }
    if (await dispatcher.deliverTo(notifier, list.map((i) => i.notification), deliveryId)) {
      await writeDlq(list.map((i) => replayedRecord(i, topics)));
      delivered += list.length;
    } else {
      deadLettered += list.length;
    }
  }));
  for (
    const [name, list] of Map.groupBy(items.filter((i) => !set.instances.has(i.notifier)), (i) => i.notifier)
  ) {
    print(`Skipped ${list.length}: notifier "${name}" is not in the configuration`);
  }
  print(`delivered=${delivered} dead_lettered_again=${deadLettered} skipped=${skipped}`);
  if (deadLettered > 0) print(`Dead-lettered again, with their reasons: ${source}`);
  await output?.close();
  await registry.close();
  return deadLettered > 0 || skipped > 0 ? 1 : 0;
}

if (import.meta.main) {
  // The service's rule, as the replay runs the same plugins: a plugin's stray promise is logged, not fatal.
  handleUnhandled({ logger: processLogger, started: () => true, exit: (code) => Deno.exit(code) });
  Deno.exit(await main(Deno.args));
}
