/**
 * A hook kafkajs 2.2.4 lacks: work a consumer must finish before kafkajs gives up a committed offset
 * it found out of range. kafkajs commits "earliest" (-2) for the group in its place at once, and then
 * no member can tell that records were deleted unread: a process killed between that commit and the
 * report of the gap lost the report for good.
 *
 * `setDefaultOffset` (that commit) is wrapped to await the hook of the member that found the offset
 * out of range (by group and member id) first. A hook that rejects keeps the offset: kafkajs's fetch
 * fails, is retried, finds the offset out of range again and runs the hook again. Nothing heartbeats
 * meanwhile (the fetch loop waits), so a hook must end well within the session timeout.
 *
 * @module
 */
import OffsetManager from "kafkajs/src/consumer/offsetManager/index.js";

interface ManagerState {
  groupId: string;
  memberId: string | null;
  /** The fetch position by topic and partition: the offset found out of range. */
  resolvedOffsets: Record<string, Record<number, string | undefined> | undefined>;
}

interface TopicPartition {
  topic: string;
  partition: number;
}

/** Where the member's fetch found the offset out of range. */
export interface OutOfRange extends TopicPartition {
  /** The offset it was to read next (null: kafkajs did not say). */
  offset: bigint | null;
}

const hooks = new Map<string, (reset: OutOfRange) => Promise<void>>();
const key = (groupId: string, memberId: string) => `${groupId}\u0000${memberId}`;

const setDefaultOffset = OffsetManager.prototype.setDefaultOffset as (
  this: ManagerState,
  at: TopicPartition,
) => Promise<void>;
OffsetManager.prototype.setDefaultOffset = async function (
  this: ManagerState,
  at: TopicPartition,
): Promise<void> {
  const hook = this.memberId ? hooks.get(key(this.groupId, this.memberId)) : undefined;
  if (hook !== undefined) {
    const position = this.resolvedOffsets[at.topic]?.[at.partition];
    const offset = position !== undefined && /^\d+$/.test(position) ? BigInt(position) : null;
    await hook({ topic: at.topic, partition: at.partition, offset });
  }
  return setDefaultOffset.call(this, at);
};

/**
 * Runs `hook` before kafkajs commits "earliest" in place of an out-of-range offset of the member
 * `memberId` of `groupId`; the commit waits for it, and does not happen if it rejects. Returns the
 * function that removes it.
 */
export function beforeOffsetReset(
  groupId: string,
  memberId: string,
  hook: (reset: OutOfRange) => Promise<void>,
): () => void {
  const k = key(groupId, memberId);
  hooks.set(k, hook);
  return () => {
    if (hooks.get(k) === hook) hooks.delete(k);
  };
}
