/**
 * dlq: records each notification it gets in the dead-letter queue (`stage: notify`, the alert, the
 * notifier that failed and its attempts). The dispatcher hands it every notification that failed for
 * good; route alerts to it directly to archive them. It uses only the public plugin API
 * (`PluginContext.deadLetter`), like any user's plugin could.
 */
import { z } from "zod";
import { defineNotifier } from "@sensor-rules/engine/plugin";

export const options = z.strictObject({});
export type Options = z.infer<typeof options>;

export default defineNotifier({
  apiVersion: 1,
  name: "dlq",
  options,
  create(_opts: Options, ctx) {
    return {
      notify: (batch) => ctx.deadLetter(batch),
    };
  },
});
