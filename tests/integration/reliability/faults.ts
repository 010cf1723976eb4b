/**
 * The fault suite's scenarios, shared by the CI test (small sizes) and `deno task test:reliability`
 * (full sizes). Every scenario streams events through a real broker while something fails, then
 * counts: every produced event_id must be processed (it raised its alert) or dead-lettered.
 *
 * Each event belongs to a sensor of its own and is out of range, so it opens its own episode: its
 * alert carries its event_id, and a second firing alert for it is a duplicate. One more sensor is
 * stuck out of range for the whole run: an ongoing episode that must fire exactly once, whatever
 * restarts and rebalances happen.
 */
import assert from "node:assert/strict";
import { Partitioners } from "kafkajs";
import { print } from "../../../src/log.ts";
import { createTopics, kafka, readTopic, topicEnv, uniqueNames, waitFor } from "../../helpers/kafka.ts";
import { type RunningService, startService } from "../../helpers/service.ts";

export interface Counts {
  scenario: string;
  produced: number;
  processed: number;
  dead_lettered: number;
  lost: number;
  duplicate_alerts: number;
  stuck_sensor_alerts: number;
  seconds: number;
}

export interface Stream {
  names: ReturnType<typeof uniqueNames>;
  env: Record<string, string>;
  /** Resolves when every event was produced (acknowledged by the broker). */
  done: Promise<void>;
  /** Fraction produced so far, 0..1. */
  progress(): number;
  ids: Set<string>;
  garbage: Set<string>;
}

/**
 * Produces `total` events (and some garbage) at about `rate` per second, retrying through outages.
 * With `hold`, production stops once `hold.at` of it is done, until `hold.until` resolves (the rate
 * counts from then on).
 */
export async function stream(
  name: string,
  total: number,
  rate: number,
  brokers: string,
  partitions = 3,
  hold?: { at: number; until: Promise<void> },
): Promise<Stream> {
  const names = uniqueNames(name);
  await createTopics([names.events, names.alerts, names.dlq, names.aggregates], partitions);
  const env = {
    ...topicEnv(names, brokers),
    LOG_LEVEL: "info",
    // A killed instance's partitions move after this, not after the default 30 s.
    KAFKA_SESSION_TIMEOUT_MS: "6000",
  };
  const ids = new Set<string>();
  const garbage = new Set<string>();
  let sent = 0;
  const producer = kafka().producer({
    createPartitioner: Partitioners.DefaultPartitioner,
    retry: { retries: 3, initialRetryTime: 200 },
    // Partitions added mid-stream are written to within a second, as a producer configured for it would.
    metadataMaxAge: 1000,
  });
  const done = (async () => {
    await producer.connect();
    const batch = Math.max(1, Math.round(rate / 20));
    let started = Date.now();
    let held = hold === undefined;
    for (let i = 0; i < total; i += batch) {
      if (!held && i >= hold!.at * total) {
        held = true;
        await hold!.until;
        started = Date.now() - (i / rate) * 1000;
      }
      const messages = [];
      for (let j = i; j < Math.min(total, i + batch); j++) {
        if (j % 100 === 50) {
          const g = `garbage ${name} ${j}`;
          garbage.add(g);
          messages.push({ key: `temperature:g-${j}`, value: g });
          continue;
        }
        const stuck = j % 10 === 0;
        const e = {
          event_id: `${name}-${j}`,
          sensor_id: stuck ? "stuck-1" : `s-${j}`,
          sensor_type: "temperature",
          value: 40 + (j % 7),
          unit: "°C",
          timestamp: new Date().toISOString(),
        };
        if (!stuck) ids.add(e.event_id);
        messages.push({ key: `temperature:${e.sensor_id}`, value: JSON.stringify(e) });
      }
      // Through a broker outage the send is retried (bounded) with the same event ids: a producer
      // retry may write a message twice, which the engine's duplicate check must absorb.
      for (let attempt = 1;; attempt++) {
        try {
          await producer.send({ topic: names.events, acks: -1, messages });
          break;
        } catch (err) {
          // Up to 5 minutes: the broker outage scenario keeps it down for 3.
          if (attempt >= 600) throw err;
          await new Promise((r) => setTimeout(r, 500));
        }
      }
      sent = Math.min(total, i + batch);
      const due = started + (sent / rate) * 1000;
      if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()));
    }
    await producer.disconnect();
  })();
  return { names, env, done, progress: () => sent / total, ids, garbage };
}

export async function waitForProgress(s: Stream, fraction: number): Promise<void> {
  await waitFor(`${Math.round(fraction * 100)}% of the stream`, () => s.progress() >= fraction, 300_000);
}

/** A `readTopic` condition: at least `n` distinct values of `field`, parsing each record once. */
function distinctAtLeast(field: string, n: number): (values: string[]) => boolean {
  const seen = new Set<unknown>();
  let read = 0;
  return (values) => {
    for (; read < values.length; read++) seen.add(JSON.parse(values[read]!)[field]);
    return seen.size >= n;
  };
}

/** Reads the outputs and counts lost and duplicated events once the group has caught up. */
export async function count(scenario: string, s: Stream, started: number): Promise<Counts> {
  await s.done;
  const expectedAlerts = s.ids.size;
  const alerts = await readTopic(s.names.alerts, distinctAtLeast("event_id", expectedAlerts + 1), 180_000);
  // Let late duplicates, if any, arrive before counting.
  const all = await readTopic(s.names.alerts, (v) => v.length >= alerts.length + 1, 3_000);
  const firing = all.map((r) => JSON.parse(r.value)).filter((a) => a.state === "firing" && !a.ack_update);
  const alertIds = new Map<string, number>();
  let stuck = 0;
  for (const a of firing) {
    if (a.sensor_id === "stuck-1") stuck++;
    else alertIds.set(a.event_id, (alertIds.get(a.event_id) ?? 0) + 1);
  }
  // A producer retry may have written a garbage message twice: wait for every distinct one.
  const dlq = await readTopic(s.names.dlq, distinctAtLeast("original_value", s.garbage.size), 60_000);
  const dlqValues = new Set(dlq.map((r) => JSON.parse(r.value).original_value as string));
  let lost = 0;
  for (const id of s.ids) if (!alertIds.has(id)) lost++;
  for (const g of s.garbage) if (!dlqValues.has(g)) lost++;
  let duplicates = 0;
  for (const n of alertIds.values()) duplicates += n - 1;
  if (lost > 0) {
    const missing = [
      ...[...s.ids].filter((id) => !alertIds.has(id)),
      ...[...s.garbage].filter((g) => !dlqValues.has(g)),
    ];
    print(`reliability: ${scenario}: missing ${missing.slice(0, 20).join(", ")}`);
  }
  return {
    scenario,
    produced: s.ids.size + s.garbage.size,
    processed: alertIds.size,
    dead_lettered: dlqValues.size,
    lost,
    duplicate_alerts: duplicates + Math.max(0, stuck - 1),
    stuck_sensor_alerts: stuck,
    seconds: Math.round((Date.now() - started) / 100) / 10,
  };
}

/** Starts the service on the stream's topics; `instance` names its Kafka client (in the broker's logs). */
export function service(s: Stream, instance: string, extra: Record<string, string> = {}): RunningService {
  return startService({ ...s.env, KAFKA_CLIENT_ID: instance, ...extra }, ["--role", "engine"]);
}

export async function joined(svc: RunningService): Promise<void> {
  await svc.waitForLine(/Joined consumer group/, 90_000);
}

/** The line `deno task test:reliability` sums up. */
export function report(c: Counts): void {
  print(
    `reliability: ${c.scenario}: produced=${c.produced} processed=${c.processed} dead_lettered=${c.dead_lettered} ` +
      `lost=${c.lost} duplicate_alerts=${c.duplicate_alerts} stuck_sensor_alerts=${c.stuck_sensor_alerts} seconds=${c.seconds}`,
  );
}

export function assertClean(c: Counts): void {
  assert.equal(c.lost, 0, `lost ${c.lost} events`);
  assert.equal(c.duplicate_alerts, 0, `${c.duplicate_alerts} duplicate alerts`);
  assert.equal(c.stuck_sensor_alerts, 1, "the ongoing episode fired exactly once");
}
