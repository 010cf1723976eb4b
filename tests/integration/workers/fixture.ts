/**
 * What the engine-worker scenarios share: one rule, a small fleet of sensors spread over the events
 * topic's partitions, the events sent to them, and the service with two workers on fresh topics.
 */
import { Partitioners } from "kafkajs";
import type { SensorAlert } from "../../../src/contract/schemas.ts";
import { createTopics, kafka, topicEnv, uniqueNames } from "../../helpers/kafka.ts";
import { type RunningService, startService } from "../../helpers/service.ts";

export const RULES = `rules:
  - id: too-hot
    sensor_type: temperature
    threshold: { max: 35 }
    priority: high
`;

export const PARTITIONS = 4;

/** Two sensors per partition: sensor `i` is on partition `i mod PARTITIONS`. */
export class Fleet {
  readonly sensors: string[];
  /** Per sensor, the values sent so far: the alerts they must raise follow from them. */
  readonly #sent: Map<string, number[]>;
  readonly #prefix: string;
  readonly #t0 = Date.now() - 60_000;
  #seq = 0;

  constructor(prefix: string) {
    this.#prefix = prefix;
    this.sensors = Array.from({ length: 2 * PARTITIONS }, (_, i) => `${prefix}-${i}`);
    this.#sent = new Map(this.sensors.map((s) => [s, []]));
  }

  /** `rounds` events per sensor, each on the sensor's partition, 50 rounds a produce request. */
  async send(topic: string, rounds: number, value: (round: number, sensor: number) => number): Promise<void> {
    const producer = kafka().producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    try {
      for (let r = 0; r < rounds; r += 50) {
        const messages = [];
        for (let rr = r; rr < Math.min(rounds, r + 50); rr++) {
          for (const [i, sensor_id] of this.sensors.entries()) {
            const v = value(rr, i);
            this.#sent.get(sensor_id)!.push(v);
            const event = {
              event_id: `${this.#prefix}-e${++this.#seq}`,
              sensor_id,
              sensor_type: "temperature",
              value: v,
              unit: "°C",
              timestamp: new Date(this.#t0 + this.#seq).toISOString(),
            };
            messages.push({
              key: `temperature:${sensor_id}`,
              value: JSON.stringify(event),
              partition: i % PARTITIONS,
            });
          }
        }
        await producer.send({ topic, acks: -1, messages });
      }
    } finally {
      await producer.disconnect();
    }
  }

  /** Firing and resolved alerts the values sent so far raise: one firing per crossing above 35, one resolved per return. */
  expectedAlerts(): number {
    let n = 0;
    for (const values of this.#sent.values()) {
      let hot = false;
      for (const v of values) {
        if (v > 35 !== hot) n++;
        hot = v > 35;
      }
    }
    return n;
  }
}

export function alertsOf(records: { value: string }[]): SensorAlert[] {
  return records.map((r) => JSON.parse(r.value) as SensorAlert);
}

/**
 * The service with `WORKERS=2` on fresh topics (events with PARTITIONS partitions) and RULES, plus
 * `env`, after `beforeStart` (with the topics' names); `cleanup` removes its rules directory.
 */
export async function startWorkers(
  prefix: string,
  env: Record<string, string>,
  beforeStart?: (n: ReturnType<typeof uniqueNames>) => Promise<void>,
) {
  const n = uniqueNames(prefix);
  await createTopics([n.events], PARTITIONS);
  await createTopics([n.alerts, n.dlq, n.aggregates], 2);
  await beforeStart?.(n);
  await Deno.mkdir("tests/artifacts", { recursive: true });
  const rulesDir = await Deno.makeTempDir({ dir: "tests/artifacts", prefix: "rules-" });
  await Deno.writeTextFile(`${rulesDir}/rules.yaml`, RULES);
  const service: RunningService = startService({
    ...topicEnv(n),
    RULES_DIR: rulesDir,
    SENSOR_PARTITIONS: String(PARTITIONS),
    WORKERS: "2",
    KAFKA_SESSION_TIMEOUT_MS: "6000",
    ...env,
  });
  return { n, service, cleanup: () => Deno.remove(rulesDir, { recursive: true }).catch(() => {}) };
}
