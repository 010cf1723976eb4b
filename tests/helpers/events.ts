import type { SensorEventInput } from "../../src/contract/schemas.ts";
import type { InputRecord } from "../../src/pipeline.ts";
import type { Output, OutRecord } from "../../src/transport/output.ts";

let seq = 0;

/** A contract event with sensible defaults. */
export function event(over: Partial<SensorEventInput> = {}): SensorEventInput {
  seq++;
  return {
    event_id: `test-${seq}`,
    sensor_id: "temp-001",
    sensor_type: "temperature",
    value: 22,
    unit: "°C",
    timestamp: new Date(Date.UTC(2026, 10, 25, 21, 0, seq % 60)).toISOString(),
    location: "Building A, Floor 1",
    metadata: { firmware_version: "1.2.3", battery_level: 90 },
    ...over,
  };
}

export function record(e: SensorEventInput | string, offset = 0): InputRecord {
  const value = typeof e === "string" ? e : JSON.stringify(e);
  const key = typeof e === "string" ? null : `${e.sensor_type}:${e.sensor_id}`;
  return { topic: "sensor-events", partition: 0, offset: String(offset), key, value };
}

/** An Output that keeps what it was given, for unit tests of the stages (never a stand-in for Kafka). */
export class MemoryOutput implements Output {
  readonly records: OutRecord[] = [];
  send(records: OutRecord[]): Promise<void> {
    this.records.push(...records);
    return Promise.resolve();
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
  on(topic: string): Record<string, unknown>[] {
    return this.records.filter((r) => r.topic === topic).map((r) => JSON.parse(r.value ?? "null"));
  }
}
