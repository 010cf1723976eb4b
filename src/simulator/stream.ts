/**
 * The embedded simulator as the engine's source: virtual sensors' events at a steady rate, in
 * process, with no broker.
 *
 * @module
 */
import type { Config } from "../config.ts";
import type { InputRecord } from "../contract/records.ts";
import type { LocalSource } from "../engine/local.ts";
import { type Logger, print } from "../log.ts";
import { EventGenerator, sensorFleet } from "./sensors.ts";

export interface SimulatorSourceOptions {
  embedded: Config["embedded"];
  eventsTopic: string;
  dlqFile: string;
  logger: Logger;
  /** Checked before each batch: the stream ends once it says so. */
  stopped: () => boolean;
}

export function simulatorSource(opts: SimulatorSourceOptions): LocalSource {
  const { embedded, logger } = opts;
  const gen = new EventGenerator({
    anomalyProbability: embedded.anomaly,
    ...(embedded.seed !== null ? { seed: embedded.seed } : {}),
    sensors: sensorFleet(embedded.sensors),
  });
  logger.info("Embedded simulator running: no broker needed", {
    rate: embedded.rate,
    sensors: gen.sensors.length,
  });
  print(
    `Running on the embedded simulator. To consume from Kafka: KAFKA_BROKERS=127.0.0.1:9092 deno task start ` +
      `(a local broker: deno task kafka:up). DLQ records go to ${opts.dlqFile}`,
  );
  return { name: "The simulator", batches: batches(gen, opts), clock: "wall" };
}

async function* batches(gen: EventGenerator, opts: SimulatorSourceOptions): AsyncGenerator<InputRecord[]> {
  const { embedded: { rate }, logger } = opts;
  // At a readable rate every event gets a line; faster runs get the periodic summary only.
  const showEvents = rate <= 20;
  const intervalMs = Math.max(1, 1000 / rate);
  const perTick = Math.max(1, Math.round(rate * intervalMs / 1000));
  while (!opts.stopped()) {
    const now = Date.now();
    const batch: InputRecord[] = [];
    for (let i = 0; i < perTick; i++) {
      const e = gen.next(now);
      if (showEvents) logger.info(`Event ${e.sensor_id} ${e.value} ${e.unit}`, { event_id: e.event_id });
      batch.push({
        topic: opts.eventsTopic,
        partition: null,
        offset: null,
        key: `${e.sensor_type}:${e.sensor_id}`,
        value: JSON.stringify(e),
      });
    }
    yield batch;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
