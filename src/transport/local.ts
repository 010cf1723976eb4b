import type { SensorAlert } from "../contract/schemas.ts";
import type { AsyncQueue } from "./queue.ts";
import type { Output, OutRecord } from "./output.ts";

/**
 * The Output of embedded and replay modes: alerts go to the in-process queue of the notifier stage,
 * DLQ records are appended to a local NDJSON file, aggregates to their own file.
 */
export class LocalOutput implements Output {
  readonly #alerts: AsyncQueue<SensorAlert>;
  readonly #alertsTopic: string;
  readonly #files: Map<string, string>;
  readonly #encoder = new TextEncoder();

  /** `files` maps a topic to the file its records are appended to. */
  constructor(alerts: AsyncQueue<SensorAlert>, alertsTopic: string, files: Map<string, string>) {
    this.#alerts = alerts;
    this.#alertsTopic = alertsTopic;
    this.#files = files;
  }

  async send(records: OutRecord[]): Promise<void> {
    const lines = new Map<string, string[]>();
    for (const r of records) {
      if (r.value === null) continue;
      if (r.topic === this.#alertsTopic) {
        this.#alerts.push(JSON.parse(r.value) as SensorAlert);
        continue;
      }
      const file = this.#files.get(r.topic);
      if (file === undefined) continue;
      let list = lines.get(file);
      if (list === undefined) lines.set(file, list = []);
      list.push(r.value);
    }
    for (const [file, list] of lines) {
      await Deno.writeFile(file, this.#encoder.encode(list.join("\n") + "\n"), {
        append: true,
        create: true,
      });
    }
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
