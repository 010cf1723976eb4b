/**
 * A hook kafkajs 2.2.4 lacks: work a consumer must finish before it rejoins its group, as the Java
 * consumer's `onPartitionsRevoked` (eager protocol) runs before its JoinGroup. kafkajs rejoins as soon
 * as its heartbeat between fetches says the group rebalances; its `REBALANCING` event comes just
 * before, and cannot be waited for. A commit started from that event (of batches whose output became
 * durable after they returned, under at-least-once) raced the JoinGroup: when this member was the
 * last to join, the generation moved on first and the commit was refused, so the partitions' next
 * owners read those records again (10 of 10 read twice when a second member joined while the first
 * one's output of 10 records was in flight: tests/integration/source/kafka_handover_test.ts).
 *
 * `joinAndSync` is wrapped to await the hook of the member that rejoins (by group and member id; a
 * member without an id is new to the group and has nothing to hand in) before it joins. While the
 * member has not rejoined, the group waits for it and still takes commits of its current generation;
 * its session timeout still runs (nothing heartbeats meanwhile), so a hook must end well within it.
 *
 * @module
 */
import ConsumerGroup from "kafkajs/src/consumer/consumerGroup.js";

interface GroupState {
  groupId: string;
  memberId: string | null;
}

const hooks = new Map<string, () => Promise<void>>();
const key = (groupId: string, memberId: string) => `${groupId}\u0000${memberId}`;

const joinAndSync = ConsumerGroup.prototype.joinAndSync as (this: GroupState) => Promise<void>;
ConsumerGroup.prototype.joinAndSync = async function (this: GroupState): Promise<void> {
  const hook = this.memberId ? hooks.get(key(this.groupId, this.memberId)) : undefined;
  // The hook reports its own failures; the rejoin goes on either way.
  if (hook !== undefined) await hook().catch(() => {});
  return joinAndSync.call(this);
};

/**
 * Runs `hook` before the member `memberId` of `groupId` rejoins the group (at a rebalance, or when
 * kafkajs resyncs after a metadata change). Returns the function that removes it.
 */
export function beforeRejoin(groupId: string, memberId: string, hook: () => Promise<void>): () => void {
  const k = key(groupId, memberId);
  hooks.set(k, hook);
  return () => {
    if (hooks.get(k) === hook) hooks.delete(k);
  };
}
