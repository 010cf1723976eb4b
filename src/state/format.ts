/**
 * The state changelog's record formats, in one place: the engine reports typed changes
 * (`src/rules/changes.ts`) and this module alone knows how they become keys and JSON values, and how
 * records read back become changes again. A compacted topic keeps the newest record per key:
 *
 * | key                       | value                                                        |
 * | ------------------------- | ------------------------------------------------------------ |
 * | `ep␀<rule>␀<group>`       | an alert episode (`Episode`), or a tombstone when it ended   |
 * | `win␀<rule>␀<group>`      | a window group's open windows (`WindowGroupState`)           |
 * | `dm␀<rule>␀<sensor>`      | a deadman rule's last-seen time of a sensor (`DeadmanTimer`) |
 * | `flap␀<rule>␀<group>`     | a flapping rule's recent transitions (`FlapState`)           |
 * | `an␀<rule>␀<sensor>`      | a sensor's anomaly baselines under a rule (`AnomalyEntry`)   |
 * | `seq␀<rule>␀<group>`      | a group's partial sequence matches (`SequenceEntry`)         |
 * | `ids`                     | the partition's newest event ids, for the duplicate check    |
 * | `pos`                     | the next input offset after the newest processed record      |
 * | `parts`                   | the input topic's partition count the state was written under |
 *
 * (␀ is U+0000.) A rule id has no U+0000 (rule ids are letters, digits, `.`, `_`, `-`); a group may
 * (a `group_by` value from metadata): the group is the rest of the key after the rule. Every record is
 * on the same partition number as the events it came from.
 *
 * Kafka carries a key as UTF-8, which has no form for a lone surrogate (a producer's `"\ud800"` in a
 * sensor id, a location or a metadata group): it arrives as U+FFFD. A group that is not well-formed
 * UTF-16 is written under its kind's prefix with `~` (`ep~␀<rule>␀<group as JSON>`), whose JSON
 * escapes it in ASCII, so it restores as the group it was and no two such groups share a key; a
 * release before this one skips these keys as a newer release's.
 *
 * @module
 */
import { z } from "zod";
import { SensorAlert, SensorType } from "../contract/schemas.ts";
import type { StateChange, StateKind } from "../rules/changes.ts";
import type { OutRecord } from "../transport/output.ts";

const SEP = "\u0000";
const encoder = new TextEncoder();
const RECENT_IDS_KEY = "ids";
/** The input topic's partition count when the partition's state was written (keys hash modulo it). */
const INPUT_PARTITIONS_KEY = "parts";
/**
 * The input topic's id when the partition's state was written: offsets (`pos`, `at`) are of that
 * topic, and mean nothing for a topic deleted and created again under the same name.
 */
const TOPIC_ID_KEY = "tid";
/** The next input offset after the partition's newest processed record, whatever the group's offset says. */
const POSITION_KEY = "pos";
/**
 * Where the partition's state stands: the next input offset after the newest record it holds, and the
 * consumer offset last handed in to the group (which a transaction carries only now and then).
 */
const STATE_AT_KEY = "at";

/** Key prefixes: short, since every key carries one, and fixed, since changelogs outlive releases. */
const PREFIX: Record<StateKind, string> = {
  episode: "ep",
  window: "win",
  deadman: "dm",
  flap: "flap",
  anomaly: "an",
  sequence: "seq",
};
/**
 * The most bytes a state record's value may have; a larger one is not written (see `changelogRecords`).
 * The broker's default `max.message.bytes` is 1 MiB (1,048,588): a record it refuses would fail the
 * partition's transaction. 900 KiB like `MAX_OUTPUT_RECORD_BYTES` (src/pipeline.ts) for alerts.
 */
export const MAX_STATE_RECORD_BYTES = 900 * 1024;

const KIND_OF_PREFIX = new Map(Object.entries(PREFIX).map(([kind, prefix]) => [prefix, kind as StateKind]));
/** What a prefix ends with when the key's group is written as JSON (a group with a lone surrogate). */
const ESCAPED = "~";

/**
 * The changelog key of a piece of state. A group with a lone surrogate became U+FFFD on the wire:
 * restored under another group, its open alert fired again under a new alert_id after a restart and
 * the old one never resolved, and groups differing only there overwrote each other's state.
 */
function stateKey(kind: StateKind, rule: string, group: string): string {
  return group.isWellFormed()
    ? `${PREFIX[kind]}${SEP}${rule}${SEP}${group}`
    : `${PREFIX[kind]}${ESCAPED}${SEP}${rule}${SEP}${JSON.stringify(group)}`;
}

/**
 * What a value must look like to be restored. Loose objects: a field added by a newer release is kept,
 * not refused, and one written by an older release that lacks an optional field still restores.
 */
/** A window's p95 sketch (src/rules/quantile_sketch.ts): keys ascending, a count per key. */
const Sketch = z.looseObject({
  alpha: z.number().gt(0).lt(1),
  keys: z.array(z.int()),
  counts: z.array(z.int().positive()),
}).refine(
  (s) => s.keys.length === s.counts.length && s.keys.every((k, i) => i === 0 || s.keys[i - 1]! < k),
  { message: "keys must be ascending, one count each" },
);

const Acc = z.looseObject({
  start: z.number(),
  end: z.number(),
  count: z.number(),
  sum: z.number(),
  mean: z.number(),
  m2: z.number(),
  min: z.number(),
  max: z.number(),
  first: z.number(),
  firstT: z.number(),
  last: z.number(),
  lastT: z.number(),
  // Every value (the format before the sketch), or at most P95_EXACT_VALUES of them.
  values: z.array(z.number()).nullable(),
  sketch: Sketch.optional(),
  sensor_id: z.string(),
  sensor_type: SensorType,
  unit: z.string(),
  location: z.string().nullable(),
});

const VALUE: Record<StateKind, z.ZodType> = {
  episode: z.looseObject({
    alert_id: z.string(),
    rule_id: z.string(),
    rule_hash: z.string(),
    group: z.string(),
    phase: z.enum(["pending", "firing", "clearing"]),
    since: z.number(),
    fired_at: z.number().nullable(),
    last_notified: z.number().nullable(),
    repeats: z.number(),
    acknowledged: z.boolean(),
    verdict: z.looseObject({
      threshold: z.number().nullable(),
      bound: z.enum(["min", "max"]).nullable(),
    }),
    alert: SensorAlert.nullable(),
  }),
  window: z.looseObject({
    rule_hash: z.string(),
    watermark: z.number(),
    time: z.number().optional(),
    accs: z.array(Acc),
    count: Acc.nullable(),
  }),
  deadman: z.looseObject({
    rule_hash: z.string(),
    last: z.number(),
    sensor_type: SensorType,
    unit: z.string(),
    location: z.string().nullable(),
    never: z.boolean().optional(),
  }),
  flap: z.looseObject({
    rule_hash: z.string(),
    times: z.array(z.number()),
    flapping: z.boolean(),
    last: SensorAlert,
    open_id: z.string().optional(),
  }),
  // The slots' and partial matches' own shape is checked where they are restored (anomaly.ts,
  // sequences.ts), against the rule they belong to.
  anomaly: z.looseObject({ rule_hash: z.string(), slots: z.array(z.unknown()) }),
  sequence: z.looseObject({
    rule_hash: z.string(),
    open: z.array(z.unknown()),
    matched_at: z.number().nullable(),
  }),
};

/**
 * Changelog records for a partition's checkpoint. An entry that cannot be serialised (decode's bounds
 * should make that impossible), or whose JSON is over `MAX_STATE_RECORD_BYTES`, is written as a
 * tombstone and reported: a restore forgets that piece of state instead of the whole transaction
 * failing, over and over, on the same batch (the broker refuses a record over its limit).
 */
export function changelogRecords(
  topic: string,
  partition: number,
  changes: readonly StateChange[],
  recentIds: readonly string[] | null,
  onError?: (change: StateChange, error: Error) => void,
): OutRecord[] {
  const out: OutRecord[] = changes.map((c) => {
    let value: string | null = null;
    try {
      value = c.value === null ? null : JSON.stringify(c.value);
      // A UTF-16 code unit is at most 3 bytes of UTF-8: only a long text needs to be measured.
      if (value !== null && value.length * 3 > MAX_STATE_RECORD_BYTES) {
        const bytes = encoder.encode(value).byteLength;
        if (bytes > MAX_STATE_RECORD_BYTES) {
          value = null;
          throw new Error(
            `${bytes} bytes of JSON exceed the limit of ${MAX_STATE_RECORD_BYTES} bytes of a state record`,
          );
        }
      }
    } catch (err) {
      onError?.(c, err instanceof Error ? err : new Error(String(err)));
    }
    return { topic, partition, key: stateKey(c.kind, c.rule, c.group), value };
  });
  if (recentIds !== null) {
    out.push({ topic, partition, key: RECENT_IDS_KEY, value: JSON.stringify(recentIds) });
  }
  return out;
}

/** The record of a partition's next input offset after its newest processed record. */
export function positionRecord(topic: string, partition: number, next: string): OutRecord {
  return { topic, partition, key: POSITION_KEY, value: JSON.stringify(next) };
}

/**
 * The record of where partition `partition`'s state stands: `next`, the input offset after the newest
 * record it holds, and `handedIn`, the consumer offset last committed to the group with it.
 */
export function stateAtRecord(topic: string, partition: number, next: bigint, handedIn: bigint): OutRecord {
  return {
    topic,
    partition,
    key: STATE_AT_KEY,
    value: JSON.stringify({ next: next.toString(), handed_in: handedIn.toString() }),
  };
}

/**
 * The input offset a restored partition goes on from. Transactions commit the consumer offset only now
 * and then (each one without it saves two of five round trips), so the group's offset may lag what the
 * state holds: when the group's offset is the one the state says it handed in last, the records
 * between are in the state already and are skipped. Any other group offset was set by someone else
 * (a reset to replay history, offsets expired) and is where reading goes on.
 */
export function resumeOffset(committed: bigint, at: StateAt | null): bigint {
  if (at === null || at.handedIn !== committed || at.next < committed) return committed;
  return at.next;
}

/** Where a partition's state stands (see `stateAtRecord`). */
export interface StateAt {
  next: bigint;
  handedIn: bigint;
}

const StateAtValue = z.object({ next: z.string().regex(/^\d+$/), handed_in: z.string().regex(/^\d+$/) });

/** The record that says under which input partition count a partition's state was written. */
export function inputPartitionsRecord(topic: string, partition: number, count: number): OutRecord {
  return { topic, partition, key: INPUT_PARTITIONS_KEY, value: JSON.stringify(count) };
}

/** The record that says which input topic (by id) the partition's offsets in the changelog are of. */
export function topicIdRecord(topic: string, partition: number, id: string): OutRecord {
  return { topic, partition, key: TOPIC_ID_KEY, value: JSON.stringify(id) };
}

/** A partition's state as the changelog holds it. */
export interface PartitionSnapshot {
  changes: StateChange[];
  recentIds: string[];
  /** The input topic's partition count its state was written under; null when not recorded. */
  inputPartitions: number | null;
  /** The id of the input topic its offsets are of; null when not recorded (written before 2026-12-02). */
  topicId: string | null;
  /** The next input offset after the newest record processed, as a string; null when not recorded. */
  position: string | null;
  /** Where the state stands (see `stateAtRecord`); null when not recorded. */
  at: StateAt | null;
}

/** A changelog key as a reader can print it (the separator is not printable). */
export function printableKey(key: string): string {
  return key.replaceAll(SEP, "/").slice(0, 200);
}

/**
 * The state in a partition's changelog records (newest value per key). A record that is not JSON, or
 * whose value is not the shape its kind has (written by something else, or cut), is left out and
 * reported: that piece of state starts afresh instead of the partition never being restored.
 */
export function parseSnapshot(
  records: Map<string, string>,
  onError: (key: string, error: Error) => void,
): PartitionSnapshot {
  const changes: StateChange[] = [];
  let recentIds: string[] = [];
  let inputPartitions: number | null = null;
  let position: string | null = null;
  let at: StateAt | null = null;
  let topicId: string | null = null;
  for (const [key, value] of records) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(value);
    } catch (err) {
      onError(key, err as Error);
      continue;
    }
    if (key === RECENT_IDS_KEY) {
      if (Array.isArray(parsed)) recentIds = parsed.filter((id): id is string => typeof id === "string");
      continue;
    }
    if (key === POSITION_KEY) {
      if (typeof parsed === "string" && /^\d+$/.test(parsed)) position = parsed;
      continue;
    }
    if (key === STATE_AT_KEY) {
      const checked = StateAtValue.safeParse(parsed);
      if (checked.success) at = { next: BigInt(checked.data.next), handedIn: BigInt(checked.data.handed_in) };
      else onError(key, new Error(`Not a state position: ${checked.error.issues[0]!.message}`));
      continue;
    }
    if (key === TOPIC_ID_KEY) {
      if (typeof parsed === "string" && parsed.length > 0) topicId = parsed;
      continue;
    }
    if (key === INPUT_PARTITIONS_KEY) {
      if (Number.isInteger(parsed) && (parsed as number) > 0) inputPartitions = parsed as number;
      continue;
    }
    // The group is everything after the rule: a group may hold U+0000 (a `group_by` value from
    // metadata), the prefix and the rule id never do. Keys are written as they always were, so a
    // changelog of any release reads the same; before, a group with U+0000 was left out unreported.
    const ruleAt = key.indexOf(SEP);
    const prefix = ruleAt === -1 ? key : key.slice(0, ruleAt);
    const escaped = prefix.endsWith(ESCAPED);
    const kind = KIND_OF_PREFIX.get(escaped ? prefix.slice(0, -ESCAPED.length) : prefix);
    // Not a kind this release knows: a newer release wrote it.
    if (kind === undefined) continue;
    const groupAt = ruleAt === -1 ? -1 : key.indexOf(SEP, ruleAt + 1);
    if (groupAt === -1) {
      onError(key, new Error(`Not a ${kind} state key: no group after the rule`));
      continue;
    }
    const rule = key.slice(ruleAt + 1, groupAt);
    const group = escaped ? jsonString(key.slice(groupAt + 1)) : key.slice(groupAt + 1);
    if (group === null) {
      onError(key, new Error(`Not a ${kind} state key: its group is not a JSON string`));
      continue;
    }
    const checked = VALUE[kind].safeParse(parsed);
    if (!checked.success) {
      const issue = checked.error.issues[0]!;
      onError(key, new Error(`Not a ${kind} state: field "${issue.path.join(".")}": ${issue.message}`));
      continue;
    }
    changes.push({ kind, rule, group, value: checked.data } as StateChange);
  }
  return { changes, recentIds, inputPartitions, topicId, position, at };
}

/** The string `text` is the JSON of, or null when it is not one. */
function jsonString(text: string): string | null {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === "string" ? value : null;
  } catch {
    return null;
  }
}
