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
import {
  classifyResponse,
  defineNotifier,
  guardTarget,
  type Notification,
  pinnedClient,
  targetOptions,
} from "@sensor-rules/engine/plugin";

export const options = z.strictObject({
  server: z.url({ protocol: /^https?$/ }).default("https://ntfy.sh"),
  topic: z.string().regex(/^[\w-]{1,64}$/),
  /** A self-hosted server on the LAN needs `allow_private_targets: true` (or its name in `allowed_hosts`). */
  ...targetOptions,
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
        // The same guard as the built-in notifiers: no request to a private address unless allowed,
        // and over http the connection goes to the address that was checked (DNS rebinding).
        const target = await guardTarget(url, opts, { signal });
        const client = pinnedClient(url, target);
        try {
          for (const { alert } of batch) await send(alert, id, signal, client);
        } finally {
          client?.close();
        }
      },
    };

    async function send(
      alert: Notification["alert"],
      id: string,
      signal: AbortSignal,
      client: Deno.HttpClient | undefined,
    ) {
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
        ...(client === undefined ? {} : { client }),
      });
      await response.body?.cancel();
      // The service's delivery policy decides: 5xx and 429 retry, other 4xx fail for good.
      const error = classifyResponse(response.status, response.headers);
      if (error !== null) throw error;
    }
  },
});
