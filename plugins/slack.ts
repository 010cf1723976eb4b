/**
 * slack: an incoming-webhook message per notification, in Block Kit: the priority's colour and
 * emoji, sensor, value and unit, threshold, location, time and rule; resolved notices in green.
 * The webhook URL is a secret: it never reaches a log line, an error or a DLQ record.
 */
import { z } from "zod";
import {
  defineNotifier,
  guardTarget,
  type Notification,
  postJson,
  targetOptions,
} from "../src/notifiers/plugin.ts";

export const options = z.strictObject({
  /** `https://hooks.slack.com/services/...`; put it in the environment: `url: ${SLACK_WEBHOOK_URL}`. */
  url: z.url({ protocol: /^https?$/ }),
  timeout_ms: z.int().positive().default(10_000),
  /** At most this many alerts of a group are shown; the rest are counted. */
  max_alerts: z.int().min(1).max(40).default(10),
  /** Loopback, private, link-local and metadata addresses are refused unless allowed here. */
  ...targetOptions,
});
export type Options = z.infer<typeof options>;

const STYLE: Record<string, { colour: string; emoji: string }> = {
  critical: { colour: "#d00000", emoji: ":red_circle:" },
  high: { colour: "#ff8c00", emoji: ":large_orange_circle:" },
  normal: { colour: "#2f80ed", emoji: ":large_blue_circle:" },
  low: { colour: "#9e9e9e", emoji: ":white_circle:" },
};
const RESOLVED = { colour: "#2eb67d", emoji: ":white_check_mark:" };

/** Slack's mrkdwn treats these three as markup. */
const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

function attachment(n: Notification) {
  const a = n.alert;
  const style = a.state === "resolved" ? RESOLVED : STYLE[a.priority] ?? STYLE.normal!;
  const unit = a.unit ? ` ${a.unit}` : "";
  const title = a.state === "resolved" ? "Resolved" : a.priority.toUpperCase();
  const field = (label: string, value: string) => ({ type: "mrkdwn", text: `*${label}*\n${esc(value)}` });
  return {
    color: style.colour,
    blocks: [
      { type: "section", text: { type: "mrkdwn", text: `${style.emoji} *${title}* ${esc(a.message)}` } },
      {
        type: "section",
        fields: [
          field("Sensor", `${a.sensor_id} (${a.sensor_type})`),
          field("Value", `${a.value}${unit}`),
          field("Threshold", a.threshold === null ? "-" : `${a.threshold}${unit}`),
          field("Location", a.location ?? "-"),
          field("Time", a.timestamp),
          field("Rule", a.rule_id),
        ],
      },
      { type: "context", elements: [{ type: "mrkdwn", text: `alert ${esc(a.alert_id)}` }] },
    ],
  };
}

/** The message for a batch: one attachment per alert, `text` as the notification's plain fallback. */
export function message(batch: Notification[], maxAlerts = 10) {
  const shown = batch.slice(0, maxAlerts);
  const rest = batch.length - shown.length;
  const first = batch[0]!.alert;
  const text = batch.length === 1
    ? `${first.state === "resolved" ? "Resolved" : first.priority.toUpperCase()}: ${first.message}`
    : `${batch.length} alerts, first: ${first.message}`;
  return {
    text,
    attachments: [
      ...shown.map(attachment),
      ...(rest > 0
        ? [{
          color: "#9e9e9e",
          blocks: [{ type: "context", elements: [{ type: "mrkdwn", text: `and ${rest} more` }] }],
        }]
        : []),
    ],
  };
}

export default defineNotifier({
  apiVersion: 1,
  name: "slack",
  options,
  create(opts: Options, ctx) {
    ctx.registerSecret(opts.url);
    return {
      async notify(batch, { signal }) {
        await guardTarget(opts.url, opts, { signal });
        await postJson(opts.url, JSON.stringify(message(batch, opts.max_alerts)), {
          timeoutMs: opts.timeout_ms,
          signal,
          secrets: [opts.url],
        });
      },
    };
  },
});
