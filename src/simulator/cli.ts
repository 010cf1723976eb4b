/**
 * `deno task simulate`: virtual sensors. With `--brokers`/`KAFKA_BROKERS` they publish to Kafka,
 * otherwise NDJSON goes to stdout, so `deno task simulate | deno task start --input -` works.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { Partitioners } from "kafkajs";
import { sensorKey } from "../contract/schemas.ts";
import { env } from "../env.ts";
import { logger } from "../log.ts";
import { createKafka, ensureTopics, kafkaSettingsFromEnv } from "../transport/kafka.ts";
import { EventGenerator, sensorFleet } from "./sensors.ts";

const USAGE = `Usage: deno task simulate [options]

  --brokers HOST:PORT[,..]  Publish to Kafka (or KAFKA_BROKERS); without it, NDJSON on stdout
  --topic NAME              Topic (default sensor-events, or SENSOR_TOPIC)
  --rate N                  Events per second in total (default 6; 0 = as fast as possible)
  --interval MS             Alternative to --rate: one round over all sensors every MS milliseconds
  --count N                 Stop after N events
  --duration S              Stop after S seconds (default: run until Ctrl-C, or until --count)
  --sensors N               Extra generated sensors besides the six defaults (for load)
  --anomaly P               Probability 0..1 that a value is out of range (default 0.05)
  --seed N                  PRNG seed for a reproducible run
  --batch N                 Messages per produce request (default 500)`;

export interface SimulateOptions {
  brokers: string[];
  topic: string;
  rate: number;
  count: number | null;
  durationMs: number | null;
  sensors: number;
  anomaly: number;
  seed: number | null;
  batch: number;
}

export function parseSimulateArgs(
  args: string[],
  env: Record<string, string | undefined>,
): SimulateOptions | "help" {
  const { values: v } = parseArgs({
    args,
    options: {
      brokers: { type: "string" },
      topic: { type: "string" },
      rate: { type: "string" },
      interval: { type: "string" },
      count: { type: "string" },
      duration: { type: "string" },
      sensors: { type: "string" },
      anomaly: { type: "string" },
      seed: { type: "string" },
      batch: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (v.help) return "help";
  const number = (name: string, s: string | undefined, fallback: number, min = 0, max = Infinity) => {
    if (s === undefined) return fallback;
    const n = Number(s);
    if (!Number.isFinite(n) || n < min || n > max) {
      throw new TypeError(`--${name} must be a number >= ${min}, got "${s}"`);
    }
    return n;
  };
  const sensors = number("sensors", v.sensors, 0);
  let rate = number("rate", v.rate, 6);
  if (v.interval !== undefined) rate = (6 + sensors) * 1000 / number("interval", v.interval, 1000, 1);
  return {
    brokers: (v.brokers ?? env.KAFKA_BROKERS ?? "").split(",").map((s) => s.trim()).filter(Boolean),
    topic: v.topic ?? env.SENSOR_TOPIC ?? "sensor-events",
    rate,
    count: v.count === undefined ? null : number("count", v.count, 0),
    durationMs: v.duration === undefined ? null : number("duration", v.duration, 0) * 1000,
    sensors,
    anomaly: number("anomaly", v.anomaly, 0.05, 0, 1),
    seed: v.seed === undefined ? null : number("seed", v.seed, 0),
    batch: Math.max(1, number("batch", v.batch, 500, 1)),
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
    Deno.stdout.writeSync(new TextEncoder().encode(USAGE + "\n"));
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
      numPartitions: Number(env.SENSOR_PARTITIONS ?? 6),
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
