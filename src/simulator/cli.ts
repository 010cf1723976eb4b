/**
 * `deno task simulate`: virtual sensors. With `--brokers`/`KAFKA_BROKERS` they publish to Kafka,
 * otherwise NDJSON goes to stdout, so `deno task simulate | deno task start --input -` works.
 *
 * @module
 */
import { Partitioners } from "kafkajs";
import { usage } from "../config/docs.ts";
import { type Env, readSettings } from "../config/setting.ts";
import { commands } from "../config/settings.ts";
import { sensorKey } from "../contract/schemas.ts";
import { env } from "../env.ts";
import { logger } from "../log.ts";
import { createKafka, ensureTopics, kafkaSettingsFromEnv } from "../transport/kafka.ts";
import { EventGenerator, sensorFleet } from "./sensors.ts";

export interface SimulateOptions {
  brokers: string[];
  topic: string;
  /** Partitions when the topic is created (SENSOR_PARTITIONS). */
  partitions: number;
  rate: number;
  count: number | null;
  durationMs: number | null;
  sensors: number;
  anomaly: number;
  seed: number | null;
  batch: number;
}

/** The simulator's settings (src/config/settings.ts): flags win over the environment. */
export function parseSimulateArgs(args: string[], env: Env): SimulateOptions | "help" {
  const v = readSettings(commands.simulate.settings, args, env);
  if (v.help) return "help";
  // --interval is a round over all sensors, so it depends on how many there are.
  const rate = v.interval === null ? v.rate : (6 + v.sensors) * 1000 / v.interval;
  return {
    brokers: v.brokers,
    topic: v.topic,
    partitions: v.sensorPartitions,
    rate,
    count: v.count,
    durationMs: v.duration === null ? null : v.duration * 1000,
    sensors: v.sensors,
    anomaly: v.anomaly,
    seed: v.seed,
    batch: v.batch,
  };
}

/** Generates events at the requested pace and hands them to `sink` in batches. */
export async function simulate(
  opts: SimulateOptions,
  sink: (batch: { key: string; value: string }[]) => Promise<void>,
  signal: AbortSignal,
  progress?: (sent: number) => void,
): Promise<number> {
  const gen = new EventGenerator({
    anomalyProbability: opts.anomaly,
    sensors: sensorFleet(opts.sensors),
    ...(opts.seed !== null ? { seed: opts.seed } : {}),
  });
  const start = Date.now();
  const deadline = opts.durationMs === null ? Infinity : start + opts.durationMs;
  let sent = 0;
  let lastProgress = start;
  while (!signal.aborted && (opts.count === null || sent < opts.count) && Date.now() < deadline) {
    let n = opts.batch;
    if (opts.count !== null) n = Math.min(n, opts.count - sent);
    if (opts.rate > 0) {
      // Pace by the total so far, so slow sends don't lower the average rate.
      const due = Math.floor((Date.now() - start) / 1000 * opts.rate) + 1 - sent;
      if (due <= 0) {
        await new Promise((r) => setTimeout(r, Math.max(1, Math.min(100, 1000 / opts.rate))));
        continue;
      }
      n = Math.min(n, due);
    }
    const now = Date.now();
    const batch = [];
    for (let i = 0; i < n; i++) {
      const e = gen.next(now);
      batch.push({ key: sensorKey(e), value: JSON.stringify(e) });
    }
    await sink(batch);
    sent += n;
    if (progress && now - lastProgress >= 1000) {
      lastProgress = now;
      progress(sent);
    }
  }
  return sent;
}

if (import.meta.main) {
  let opts;
  try {
    opts = parseSimulateArgs(Deno.args, env);
  } catch (err) {
    logger.error((err as Error).message);
    Deno.exit(2);
  }
  if (opts === "help") {
    Deno.stdout.writeSync(new TextEncoder().encode(usage(commands.simulate) + "\n"));
    Deno.exit(0);
  }
  const controller = new AbortController();
  Deno.addSignalListener("SIGINT", () => controller.abort());
  Deno.addSignalListener("SIGTERM", () => controller.abort());
  const started = Date.now();
  const progress = (sent: number) =>
    logger.info("Simulating", { sent, rate: Math.round(sent / ((Date.now() - started) / 1000)) });
  let sent: number;
  if (opts.brokers.length > 0) {
    const kafka = createKafka(kafkaSettingsFromEnv(opts.brokers), logger);
    const admin = kafka.admin();
    await admin.connect();
    await ensureTopics(admin, [{
      topic: opts.topic,
      numPartitions: opts.partitions,
    }]);
    await admin.disconnect();
    const producer = kafka.producer({
      allowAutoTopicCreation: false,
      createPartitioner: Partitioners.DefaultPartitioner,
    });
    await producer.connect();
    const topic = opts.topic;
    sent = await simulate(
      opts,
      async (batch) => {
        await producer.send({ topic, acks: -1, messages: batch });
      },
      controller.signal,
      progress,
    );
    await producer.disconnect();
  } else {
    const encoder = new TextEncoder();
    const out = Deno.stdout.writable.getWriter();
    sent = await simulate(
      opts,
      async (batch) => {
        try {
          await out.write(encoder.encode(batch.map((b) => b.value).join("\n") + "\n"));
        } catch {
          controller.abort(); // the reader went away (e.g. `| head`)
        }
      },
      controller.signal,
      Deno.stdout.isTerminal() ? undefined : progress,
    );
    await out.close().catch(() => {});
  }
  logger.info("Simulation finished", { sent, seconds: (Date.now() - started) / 1000 });
}
