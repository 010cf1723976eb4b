/**
 * Benchmark traffic: the simulator's events, padded with realistic metadata to ~300 bytes, for a fleet
 * of 10,000 sensors, produced with kafkajs in large batches.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import type { Kafka } from "kafkajs";
import { Partitioners } from "kafkajs";
import type { SensorEventInput } from "../../src/contract/schemas.ts";
import { EventGenerator, sensorFleet } from "../../src/simulator/sensors.ts";

export interface Traffic {
  next(timestamp: number): { key: string; value: string; event: SensorEventInput };
}

/** Events of `sensors` sensors, round-robin; `anomaly` is the share of out-of-range values. */
export function traffic(sensors: number, anomaly: number, seed = 1): Traffic {
  const gen = new EventGenerator({ seed, anomalyProbability: anomaly, sensors: sensorFleet(sensors - 6) });
  return {
    next(timestamp) {
      const event = gen.next(timestamp);
      const n = gen.produced;
      event.metadata = {
        ...event.metadata,
        gateway: `gw-${String(n % 97).padStart(3, "0")}.floor-1.building-a`,
        calibrated_at: "2025-11-02T08:00:00Z",
        rssi: -40 - (n % 50),
      };
      return { key: `${event.sensor_type}:${event.sensor_id}`, value: JSON.stringify(event), event };
    },
  };
}

/**
 * Produces `count` events as fast as the broker takes them; event time advances `stepMs` per event,
 * ending now, so windows close and deadman state fills as in a day of traffic.
 */
export async function preload(
  kafka: Kafka,
  topic: string,
  opts: { count: number; sensors: number; anomaly: number; stepMs?: number; onProgress?(n: number): void },
): Promise<{ seconds: number; bytes: number }> {
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  const t = traffic(opts.sensors, opts.anomaly);
  const step = opts.stepMs ?? 1;
  const start = Date.now() - opts.count * step;
  const chunk = 4000;
  const inFlight = new Set<Promise<unknown>>();
  let bytes = 0;
  const began = performance.now();
  try {
    for (let i = 0; i < opts.count; i += chunk) {
      const messages = [];
      for (let j = i; j < Math.min(opts.count, i + chunk); j++) {
        const m = t.next(start + j * step);
        bytes += m.value.length;
        messages.push({ key: m.key, value: Buffer.from(m.value) });
      }
      const p = producer.send({ topic, acks: 1, messages }).then(() => {
        inFlight.delete(p);
      });
      inFlight.add(p);
      if (inFlight.size >= 6) await Promise.race(inFlight);
      opts.onProgress?.(Math.min(opts.count, i + chunk));
    }
    await Promise.all(inFlight);
  } finally {
    await producer.disconnect();
  }
  return { seconds: (performance.now() - began) / 1000, bytes };
}
