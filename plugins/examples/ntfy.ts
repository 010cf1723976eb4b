/**
 * An example of a user's plugin: pushes each alert to an ntfy server (https://ntfy.sh) as a plain
 * text message. Copy it into `plugins/`, or reference it by path from `rules/notifiers.yaml`:
 *
 * ```yaml
 * notifiers:
 *   - name: phone
 *     plugin: plugins/examples/ntfy.ts
 *     options: { server: https://ntfy.sh, topic: my-sensors }
 * ```
 */
import { z } from "zod";
import { classifyResponse, defineNotifier } from "../../src/notifiers/plugin.ts";

export const options = z.strictObject({
  server: z.url().default("https://ntfy.sh"),
  topic: z.string().regex(/^[\w-]{1,64}$/),
});
export type Options = z.infer<typeof options>;

const PRIORITY: Record<string, string> = { low: "2", normal: "3", high: "4", critical: "5" };

export default defineNotifier({
  apiVersion: 1,
  name: "ntfy",
  options,
  create(opts: Options) {
    const url = `${opts.server.replace(/\/+$/, "")}/${opts.topic}`;
    return {
      async notify(batch, { id, signal }) {
        for (const { alert } of batch) {
          const response = await fetch(url, {
            method: "POST",
            body: alert.message,
            headers: {
              "x-title": `${alert.state === "resolved" ? "Resolved" : alert.priority}: ${alert.rule_id}`,
              "x-priority": alert.state === "resolved" ? "2" : PRIORITY[alert.priority] ?? "3",
              "x-tags": alert.sensor_type,
              "x-sequence-id": id,
            },
            redirect: "manual",
            signal,
          });
          await response.body?.cancel();
          // The service's delivery policy decides: 5xx and 429 retry, other 4xx fail for good.
          const error = classifyResponse(response.status, response.headers);
          if (error !== null) throw error;
        }
      },
    };
  },
});
