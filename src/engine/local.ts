/**
 * The engine stage without a broker (replay, embedded): the source's batches through the Pipeline to
 * the local output, one batch at a time, each written before the next is read.
 *
 * @module
 */
import type { InputRecord } from "../contract/records.ts";
import type { Logger } from "../log.ts";
import { Pipeline, type PipelineOptions } from "../pipeline.ts";
import { readNdjson } from "../source/ndjson.ts";
import type { Output } from "../transport/output.ts";

/** Where a local engine's events come from, and the clock they run on. */
export interface LocalSource {
  /** Who failed, for the line main prints: `Replay of "events.ndjson"`, `The simulator`. */
  name: string;
  batches: AsyncIterable<InputRecord[]>;
  /**
   * `event` (replay): event time alone, as `rules:test` does, so the same input gives the same alerts;
   * the end of the input closes what it left open. `wall`: a live stream.
   */
  clock: "wall" | "event";
}

export interface LocalEngineStage {
  pipeline: Pipeline;
  output: Output;
  /** Processes the source until its end or until `stopped()`; rejects when the source or a write fails. */
  run(stopped: () => boolean): Promise<void>;
  /** Publishes clock-driven output (closed windows, deadman alerts); called once a second. */
  flush(): Promise<void>;
}

export interface LocalEngineOptions {
  source: LocalSource;
  output: Output;
  logger: Logger;
  /** The Pipeline's settings, besides its output and clock. */
  pipeline: Omit<PipelineOptions, "output" | "checkpoint" | "clock">;
}

export function localEngineStage(
  { source, output, logger, pipeline: settings }: LocalEngineOptions,
): LocalEngineStage {
  const pipeline = new Pipeline({ ...settings, output, clock: source.clock });
  return {
    pipeline,
    output,
    async run(stopped) {
      for await (const batch of source.batches) {
        if (stopped()) break;
        await pipeline.process(batch);
      }
      if (source.clock !== "event") return;
      const last = pipeline.flush();
      if (last.length > 0) await output.send(last);
    },
    async flush() {
      const out = pipeline.tick();
      if (out.length === 0) return;
      // A file write that failed (disk full) is tried again: the clock's output has no source
      // offset to fall back on.
      for (let attempt = 1;; attempt++) {
        try {
          await output.send(out);
          return;
        } catch (err) {
          logger.error("Publishing tick output failed, retrying", { attempt, error: err });
          await new Promise((r) => setTimeout(r, Math.min(5000, 250 * 2 ** attempt)));
        }
      }
    },
  };
}

/** An NDJSON file (or stdin, `-`) replayed in event time. */
export function replaySource(input: string, logger: Logger): LocalSource {
  logger.info("Replaying NDJSON", { input: input === "-" ? "stdin" : input });
  return { name: `Replay of "${input}"`, batches: readNdjson(input, 500), clock: "event" };
}
