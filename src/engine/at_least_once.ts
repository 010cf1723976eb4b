/**
 * At-least-once processing: a batch's output is produced, and its offset committed once the output
 * is acknowledged. A crash between the two reads the batch again (duplicates, never a loss).
 *
 * @module
 */
import type { Pipeline } from "../pipeline.ts";
import type { KafkaSource } from "../source/kafka.ts";
import type { Output } from "../transport/output.ts";
import type { EngineStage, PipelineParts, SourceParts } from "./types.ts";

export interface AtLeastOnceOptions {
  /** Where the engine writes; retries a failed produce itself (`KafkaOutput`'s `retryUntilClosed`). */
  output: Output;
  pipeline: (parts: PipelineParts) => Pipeline;
  source: (parts: SourceParts) => KafkaSource;
}

export function atLeastOnceEngine(opts: AtLeastOnceOptions): EngineStage {
  const { output } = opts;
  const pipeline = opts.pipeline({ output, checkpoint: false });
  const source = opts.source({
    // The produce is not awaited: the next fetch overlaps it, and the source commits the batch's
    // offset once it is acknowledged. The output keeps the order of the batches' records.
    handle: (records, ctx) => {
      const out = pipeline.evaluate(records);
      if (out.length > 0) ctx.commitAfter(output.send(out));
      return Promise.resolve();
    },
  });
  return {
    pipeline,
    output,
    source,
    // No retry loop here: the output retries until it is closed, holding later sends back.
    flush: () => output.send(pipeline.tick()),
    start: () => source.start(),
    stop: () => source.stop(),
  };
}
