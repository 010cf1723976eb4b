/**
 * Event → alert latency at a fixed input rate. One event in `probeEvery` is a probe: a sensor seen
 * once (a new alert episode every time) that a probe rule alerts on at once. Latency runs from the
 * probe's creation to the alert's record timestamp (set when the service produced it) and to the
 * moment this process consumed the alert.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { type Kafka, Partitioners } from "kafkajs";
import { percentile } from "./measure.ts";
import { traffic } from "./events.ts";

/** Only sensors of this type are probes; the fleet has none, so the probe rule sees only probes. */
export const PROBE_RULE = {
  id: "bench-latency-probe",
  sensor_type: "motion",
  condition: { "==": [{ "var": "metadata.probe" }, true] },
  priority: "low",
};

export interface LatencyResult {
  rate: number;
  /** The service's PROCESSING_GUARANTEE (absent in reports written before it was measured). */
  guarantee?: "exactly_once" | "at_least_once";
  seconds: number;
  sent: number;
  probes: number;
  alerts: number;
  /** Creation → alert record timestamp (produced by the service), ms. */
  /** p999: the 99.9th percentile (absent in older reports). */
  produced_ms: { p50: number; p99: number; p999?: number; max: number };
  /** Creation → alert consumed here, ms. */
  consumed_ms: { p50: number; p99: number; max: number };
  /** The service's peak RSS over the run (absent in older reports). */
  peak_rss_mib?: number;
}

// Date.now(), not performance.timeOrigin + now(): record timestamps come from Date.now(), and the two clocks drift apart.
const now = () => Date.now();

export async function measureLatency(
  kafka: Kafka,
  opts: {
    eventsTopic: string;
    alertsTopic: string;
    rate: number;
    seconds: number;
    warmupS: number;
    sensors: number;
    probeEvery?: number;
  },
): Promise<LatencyResult> {
  const probeEvery = opts.probeEvery ?? 20;
  const created = new Map<string, number>();
  const produced: number[] = [];
  const consumed: number[] = [];
  let measuredFrom = Infinity;

  const consumer = kafka.consumer({ groupId: `${opts.alertsTopic}.reader`, maxWaitTimeInMs: 20 });
  await consumer.connect();
  await consumer.subscribe({ topics: [opts.alertsTopic], fromBeginning: true });
  let joined!: () => void;
  const join = new Promise<void>((r) => joined = r);
  consumer.on(consumer.events.GROUP_JOIN, () => joined());
  await consumer.run({
    // No commit per batch: its round trip would delay the next fetch, and so what is measured.
    autoCommit: false,
    eachBatch: ({ batch }) => {
      const seenAt = now();
      for (const m of batch.messages) {
        const alert = JSON.parse(m.value!.toString()) as {
          rule_id?: string;
          event_id?: string;
          state?: string;
        };
        if (alert.rule_id !== PROBE_RULE.id || alert.state !== "firing") continue;
        const at = created.get(alert.event_id ?? "");
        if (at === undefined) continue;
        created.delete(alert.event_id!);
        if (at < measuredFrom) continue;
        produced.push(Number(m.timestamp) - at);
        consumed.push(seenAt - at);
      }
      return Promise.resolve();
    },
  });
  await join;

  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  const t = traffic(opts.sensors, 0, 2);
  const began = now();
  measuredFrom = began + opts.warmupS * 1000;
  let sent = 0;
  let probes = 0;
  const end = began + opts.seconds * 1000;
  // Each 5 ms, whatever the rate says is due: the input rate holds even when a send is slow.
  while (now() < end) {
    const due = Math.floor(((now() - began) / 1000) * opts.rate);
    const messages = [];
    for (; sent < due; sent++) {
      const at = now();
      const m = t.next(Math.floor(at));
      if (sent % probeEvery === 0) {
        probes++;
        const event = {
          ...m.event,
          event_id: `probe-${sent}`,
          sensor_id: `probe-${sent}`,
          sensor_type: "motion" as const,
          unit: "",
          metadata: { ...m.event.metadata, probe: true },
        };
        created.set(event.event_id, at);
        messages.push({ key: `motion:${event.sensor_id}`, value: Buffer.from(JSON.stringify(event)) });
      } else {
        messages.push({ key: m.key, value: Buffer.from(m.value) });
      }
    }
    if (messages.length > 0) await producer.send({ topic: opts.eventsTopic, acks: 1, messages });
    await new Promise((r) => setTimeout(r, 5));
  }
  // The last alerts: wait until every probe was answered, up to 10 s.
  const drainUntil = now() + 10_000;
  while (created.size > 0 && now() < drainUntil) await new Promise((r) => setTimeout(r, 50));
  await producer.disconnect();
  await consumer.disconnect();

  const stats = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    const r = (v: number) => Math.round(v * 10) / 10;
    return {
      p50: r(percentile(s, 50)),
      p99: r(percentile(s, 99)),
      p999: r(percentile(s, 99.9)),
      max: r(s.at(-1) ?? NaN),
    };
  };
  return {
    rate: opts.rate,
    seconds: opts.seconds,
    sent,
    probes,
    alerts: produced.length,
    produced_ms: stats(produced),
    consumed_ms: stats(consumed),
  };
}
