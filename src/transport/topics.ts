/**
 * What the service expects of the cluster's topics, checked before it consumes and again when the
 * input topic grows. An operator's change (partitions added, a topic deleted or reconfigured) must
 * never lose or double alerts silently: each is either followed (the changelog grows with the input
 * topic) or refused with the fix in the message.
 *
 * @module
 */
import { type Admin, ConfigResourceTypes, type ITopicConfig } from "kafkajs";
import type { Logger } from "../log.ts";
import { ensureTopics } from "./kafka.ts";

export interface TopicLayout {
  events: string;
  alerts: string;
  dlq: string;
  aggregates: string;
  /** The compacted topic of silences (one partition, read whole by every instance); null: none. */
  silences?: string | null;
  /** The exactly-once engine's state changelog; null when this process keeps no changelog. */
  state: string | null;
  /** SENSOR_PARTITIONS: the partition count for topics the service creates. */
  partitions: number;
  /** The engine's consumer group, whose committed offsets say whether state existed. */
  engineGroup: string;
  /** `--accept-empty-state`: start from empty state though the changelog is gone. */
  acceptEmptyState: boolean;
  /** Reads a topic's id (null: no such topic); without it a changelog created again is not told. */
  readTopicId?: (topic: string) => Promise<string | null>;
}

/**
 * The metadata an exactly-once transaction commits with a partition's consumer offset: the
 * changelog's topic id, so that a start can tell the group's offsets from state that is no longer
 * there (the changelog deleted and created again: it exists, but holds nothing the offsets went with).
 */
export function changelogMark(changelogId: string): string {
  return `changelog:${changelogId}`;
}

/** The changelog id in a committed offset's metadata (see `changelogMark`); null when there is none. */
export function changelogOfMark(metadata: string | null | undefined): string | null {
  return typeof metadata === "string" && metadata.startsWith("changelog:") ? metadata.slice(10) : null;
}

/** A topic the service cannot work with safely; the message says how to fix it. */
export class TopicLayoutError extends Error {
  override name = "TopicLayoutError";
}

/**
 * Creates missing topics, checks existing ones against what the service needs, and returns the
 * input topic's actual partition count (which wins over SENSOR_PARTITIONS).
 */
export async function prepareTopics(admin: Admin, layout: TopicLayout, logger: Logger): Promise<number> {
  const { events, alerts, dlq, aggregates } = layout;
  await ensureTopics(admin, [
    { topic: events, numPartitions: layout.partitions },
    { topic: alerts, numPartitions: layout.partitions },
    { topic: dlq, numPartitions: 1 },
    { topic: aggregates, numPartitions: layout.partitions },
  ]);
  const counts = await partitionCounts(admin, [events, aggregates]);
  const partitions = counts.get(events)!;
  if (partitions !== layout.partitions) {
    logger.warn(
      `The topic "${events}" has ${partitions} partitions and SENSOR_PARTITIONS is ${layout.partitions}: the topic's count applies; set SENSOR_PARTITIONS=${partitions} to silence this`,
      { topic: events },
    );
  }
  const aggregatePartitions = counts.get(aggregates)!;
  if (aggregatePartitions !== partitions) {
    logger.warn(
      `The topic "${aggregates}" has ${aggregatePartitions} partitions and "${events}" has ${partitions}: aggregates are keyed by their group, so a consumer of "${aggregates}" sees each group in order either way, but the partition numbers do not line up`,
      { topic: aggregates },
    );
  }
  await refuseCompactedAlerts(admin, alerts);
  if (layout.silences != null) {
    await ensureTopics(admin, [silencesTopic(layout.silences)]);
    await refuseExpiringTopic(admin, layout.silences, "the silences", logger);
    await warnWritersClocks(admin, layout.silences, logger);
  }
  if (layout.state !== null) await ensureChangelog(admin, layout, partitions, logger);
  return partitions;
}

/**
 * A topic whose newest record per key is what holds now (the engine's state, the silences, the
 * sensors' limits) must keep that record for good: compacted, with no retention that deletes. One
 * made by an operator's tooling with the cluster's defaults (cleanup.policy=delete, 7 days) lost its
 * records after a week, unsaid: a restart then forgot an episode open for longer (it fired again and
 * never resolved), a silence for a month's maintenance, a sensor's own limits. Refused with the fix;
 * a topic that deletes nothing but is not compacted (retention -1) only grows, and is said once.
 */
export async function refuseExpiringTopic(
  admin: Admin,
  topic: string,
  holds: string,
  logger: Logger,
): Promise<void> {
  const problem = await retentionProblem(admin, topic, holds);
  if (problem?.level === "error") throw new TopicLayoutError(problem.message);
  if (problem !== null) logger.warn(problem.message, { topic });
}

/** What is wrong with a topic's retention for `refuseExpiringTopic`, with the fix; `error`: it deletes records. */
export interface RetentionProblem {
  level: "error" | "warn";
  message: string;
}

/**
 * The retention of a topic whose newest record per key must stand (see `refuseExpiringTopic`), from
 * one DescribeConfigs: null when it is compacted and deletes nothing.
 */
export async function retentionProblem(
  admin: Admin,
  topic: string,
  holds: string,
): Promise<RetentionProblem | null> {
  const described = await admin.describeConfigs({
    includeSynonyms: false,
    resources: [{
      type: ConfigResourceTypes.TOPIC,
      name: topic,
      configNames: ["cleanup.policy", "retention.ms", "retention.bytes"],
    }],
  });
  const entries = described.resources[0]?.configEntries ?? [];
  const config = (name: string, fallback: string) =>
    entries.find((e) => e.configName === name)?.configValue ?? fallback;
  const policy = config("cleanup.policy", "delete");
  const policies = policy.split(",").map((p) => p.trim());
  const ms = config("retention.ms", "604800000");
  const bytes = config("retention.bytes", "-1");
  if (policies.includes("delete") && (ms !== "-1" || bytes !== "-1")) {
    return {
      level: "error",
      message:
        `The topic "${topic}" holds ${holds} and has cleanup.policy=${policy} with retention.ms=${ms} and retention.bytes=${bytes}: retention deletes records past those limits, and ${holds} they hold with them, unsaid. Set cleanup.policy=compact (kafka-configs.sh --alter --entity-type topics --entity-name ${topic} --add-config cleanup.policy=compact)`,
    };
  }
  if (!policies.includes("compact")) {
    return {
      level: "warn",
      message:
        `The topic "${topic}" holds ${holds} and has cleanup.policy=${policy}: it deletes nothing, but keeps every record for ever, and each start reads them all. Set cleanup.policy=compact (kafka-configs.sh --alter --entity-type topics --entity-name ${topic} --add-config cleanup.policy=compact)`,
    };
  }
  return null;
}

/**
 * The silences topic as created: compacted, one partition (read whole by every instance), its
 * records stamped by the broker when appended. A look at the topic tells it was created again by a
 * record newer than every one read (src/notifiers/silences/kafka.ts); stamped by their writers'
 * clocks, one record written by an instance whose clock ran an hour ahead hid a topic created again
 * for that hour: the silences written meanwhile on other instances never held here.
 */
export function silencesTopic(topic: string): ITopicConfig {
  return {
    topic,
    numPartitions: 1,
    configEntries: [
      { name: "cleanup.policy", value: "compact" },
      { name: "message.timestamp.type", value: "LogAppendTime" },
    ],
  };
}

/**
 * Says once, at start, that a silences topic made before the service stamped it (or by hand) takes
 * its writers' clocks: the fix is one setting. Not changed here: kafkajs can only replace a topic's
 * whole configuration (AlterConfigs), which would undo an operator's other settings.
 */
async function warnWritersClocks(admin: Admin, topic: string, logger: Logger): Promise<void> {
  const described = await admin.describeConfigs({
    includeSynonyms: false,
    resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: ["message.timestamp.type"] }],
  });
  const type = described.resources[0]?.configEntries.find((e) => e.configName === "message.timestamp.type")
    ?.configValue;
  if (type !== undefined && type !== "LogAppendTime") {
    logger.warn(
      `The silences topic "${topic}" is stamped by its writers' clocks (message.timestamp.type=${type}): an instance whose clock runs ahead can hide the topic being deleted and created again from the others until their clocks pass its stamps; set message.timestamp.type=LogAppendTime on it (kafka-configs.sh --alter --entity-type topics --entity-name ${topic} --add-config message.timestamp.type=LogAppendTime)`,
      { topic },
    );
  }
}

/** Partition count per topic, from one metadata request. */
export async function partitionCounts(admin: Admin, topics: string[]): Promise<Map<string, number>> {
  const meta = await admin.fetchTopicMetadata({ topics });
  return new Map(meta.topics.map((t) => [t.name, t.partitions.length]));
}

/**
 * The notifier stage reads every alert in order; under compaction a lagging notifier could find a
 * firing alert already replaced by its resolved notice (same key), and never deliver it.
 */
async function refuseCompactedAlerts(admin: Admin, alerts: string): Promise<void> {
  const described = await admin.describeConfigs({
    includeSynonyms: false,
    resources: [{ type: ConfigResourceTypes.TOPIC, name: alerts, configNames: ["cleanup.policy"] }],
  });
  const policy = described.resources[0]?.configEntries.find((e) => e.configName === "cleanup.policy")
    ?.configValue ?? "delete";
  if (policy.split(",").includes("compact")) {
    throw new TopicLayoutError(
      `The alerts topic "${alerts}" has cleanup.policy=${policy}: compaction can remove a firing alert before the notifier stage delivers it. Set cleanup.policy=delete (kafka-configs.sh --alter --entity-type topics --entity-name ${alerts} --add-config cleanup.policy=delete)`,
    );
  }
}

/**
 * The changelog ids the group's offsets on `topic` were committed with (see `changelogMark`): none for
 * offsets committed without one (at-least-once, a release before 2026-12-02).
 */
async function changelogsOfOffsets(admin: Admin, group: string, topic: string): Promise<Set<string>> {
  const [offsets] = await admin.fetchOffsets({ groupId: group, topics: [topic] });
  const ids = new Set<string>();
  for (const p of offsets?.partitions ?? []) {
    const id = changelogOfMark((p as { metadata?: string | null }).metadata);
    if (p.offset !== "-1" && id !== null) ids.add(id);
  }
  return ids;
}

async function hasCommittedOffsets(admin: Admin, group: string, topic: string): Promise<boolean> {
  const [offsets] = await admin.fetchOffsets({ groupId: group, topics: [topic] });
  return offsets?.partitions.some((p) => p.offset !== "-1") ?? false;
}

/**
 * The changelog has one partition per input partition (the state of input partition p is on
 * changelog partition p). Missing while the group has committed offsets means the state is gone: the
 * engine would forget open episodes and fire them again, so it refuses unless told to start empty.
 */
export async function ensureChangelog(
  admin: Admin,
  layout: TopicLayout,
  partitions: number,
  logger: Logger,
): Promise<void> {
  const state = layout.state!;
  const exists = (await admin.listTopics()).includes(state);
  if (!exists) {
    if (await hasCommittedOffsets(admin, layout.engineGroup, layout.events)) {
      if (!layout.acceptEmptyState) {
        throw new TopicLayoutError(
          `The state changelog "${state}" is missing, but the group "${layout.engineGroup}" has committed offsets on "${layout.events}": starting without it forgets open alerts, windows and deadman timers, and open episodes fire again. Restore the topic, or start once with --accept-empty-state to begin from empty state`,
        );
      }
      logger.warn("Starting from empty state: the state changelog was missing (--accept-empty-state)", {
        topic: state,
        group: layout.engineGroup,
      });
    }
    await ensureTopics(admin, [{
      topic: state,
      numPartitions: partitions,
      configEntries: [{ name: "cleanup.policy", value: "compact" }],
    }]);
    return;
  }
  await refuseExpiringTopic(admin, state, "the engine's state", logger);
  // There, but perhaps not the changelog the group's offsets went with: deleted and created again,
  // it holds none of that state, and reading on from those offsets would fire open episodes again.
  if (layout.readTopicId !== undefined) {
    const committedWith = await changelogsOfOffsets(admin, layout.engineGroup, layout.events);
    const id = committedWith.size === 0 ? null : await layout.readTopicId(state);
    if (id !== null && [...committedWith].some((c) => c !== id)) {
      if (!layout.acceptEmptyState) {
        throw new TopicLayoutError(
          `The state changelog "${state}" is not the one the group "${layout.engineGroup}" committed its offsets on "${layout.events}" with (it was deleted and created again): its state is gone, and starting would forget open alerts, windows and deadman timers, and fire open episodes again. Restore the topic, or start once with --accept-empty-state to begin from empty state`,
        );
      }
      logger.warn("Starting from empty state: the state changelog was created again (--accept-empty-state)", {
        topic: state,
        group: layout.engineGroup,
      });
    }
  }
  await growChangelog(admin, state, layout.events, partitions, logger);
}

/**
 * Gives the changelog as many partitions as the input topic has; returns its count. A changelog with
 * more partitions belongs to another (recreated) input topic, and its state to other events.
 */
export async function growChangelog(
  admin: Admin,
  state: string,
  events: string,
  partitions: number,
  logger: Logger,
): Promise<number> {
  const have = (await partitionCounts(admin, [state])).get(state)!;
  if (have > partitions) {
    throw new TopicLayoutError(
      `The state changelog "${state}" has ${have} partitions but "${events}" has ${partitions}: it holds the state of another input topic (was "${events}" recreated with fewer partitions?). Delete "${state}" and start once with --accept-empty-state, or recreate "${events}" with ${have} partitions`,
    );
  }
  if (have < partitions) {
    logger.warn(`Partitions were added to "${events}": extending the state changelog`, {
      topic: state,
      from: have,
      to: partitions,
    });
    await admin.createPartitions({ topicPartitions: [{ topic: state, count: partitions }] }).catch(
      async (err) => {
        // Another member (an engine worker of the same process, another instance) extended it first:
        // the broker refuses a count the topic already has (INVALID_PARTITIONS). With two workers the
        // loser's restores failed, and the partition that then saw no batch (its sensors moved away)
        // never ended its moved sensors' episodes.
        if ((await partitionCounts(admin, [state])).get(state)! < partitions) throw err;
      },
    );
  }
  return partitions;
}
