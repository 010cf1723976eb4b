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
  pinnedClient,
  postJson,
  targetOptions,
} from "@sensor-rules/engine/plugin";

export const options = z.strictObject({
  /** `https://hooks.slack.com/services/...`; put it in the environment: `url: ${SLACK_WEBHOOK_URL}`. */
  url: z.url({ protocol: /^https?$/ }),
  timeout_ms: z.int().positive().default(10_000),
  /**
   * At most this many alerts of a group are shown; the rest are counted. At most 16 fit in Slack's
   * 50 blocks (3 each, and the count), whatever is set here.
   */
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

/**
 * Slack's limits, in characters after escaping. Past a Block Kit limit Slack answers 400, which is
 * permanent, so the alert would go to the DLQ and fail again on replay.
 */
export const LIMITS = {
  /** The top-level `text` (the notification's fallback): Slack truncates past it; cut here with the marker. */
  text: 40_000,
  /** A text object: a section's text, a context element. */
  section: 3_000,
  /** One of a section's fields. */
  field: 2_000,
  /** Blocks in one message, over all attachments. */
  blocks: 50,
} as const;
const BLOCKS_PER_ALERT = 3;

const MARKER = "… [truncated]";

/**
 * Slack's mrkdwn and plain text both treat these three as markup (`<!channel>`, `<url|label>`):
 * every value from an event passes through here.
 */
const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/**
 * Cuts escaped text to at most `limit` characters, ending with a marker; never inside an entity
 * (`&amp;`), which Slack would show as a stray `&am`, nor between the halves of a surrogate pair.
 */
export function clip(text: string, limit: number): string {
  if (text.length <= limit) return text;
  let end = limit - MARKER.length;
  // In escaped text every `&` starts an entity, which ends at the next `;`.
  const amp = text.lastIndexOf("&", end - 1);
  if (amp !== -1 && text.indexOf(";", amp) >= end) end = amp;
  const last = text.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end--;
  return text.slice(0, end) + MARKER;
}

/** Escapes `value` and cuts it so that `prefix` (markup of ours, not escaped) and it fit in `limit`. */
const fit = (prefix: string, value: string, limit: number) =>
  prefix + clip(esc(value), limit - prefix.length);

function attachment(n: Notification) {
  const a = n.alert;
  const style = a.state === "resolved" ? RESOLVED : STYLE[a.priority] ?? STYLE.normal!;
  const unit = a.unit ? ` ${a.unit}` : "";
  const title = a.state === "resolved" ? "Resolved" : a.priority.toUpperCase();
  const field = (label: string, value: string) => ({
    type: "mrkdwn",
    text: fit(`*${label}*\n`, value, LIMITS.field),
  });
  return {
    color: style.colour,
    blocks: [
      {
        type: "section",
        text: { type: "mrkdwn", text: fit(`${style.emoji} *${title}* `, a.message, LIMITS.section) },
      },
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
      { type: "context", elements: [{ type: "mrkdwn", text: fit("alert ", a.alert_id, LIMITS.section) }] },
    ],
  };
}

/**
 * The message for a batch: one attachment per alert, `text` as the notification's plain fallback.
 * Shows at most `maxAlerts` alerts, and no more than fit in Slack's block limit with the count of the rest.
 */
export function message(batch: Notification[], maxAlerts = 10) {
  const fitting = batch.length * BLOCKS_PER_ALERT <= LIMITS.blocks
    ? batch.length
    : Math.floor((LIMITS.blocks - 1) / BLOCKS_PER_ALERT);
  const shown = batch.slice(0, Math.min(maxAlerts, fitting));
  const rest = batch.length - shown.length;
  const first = batch[0]!.alert;
  const text = batch.length === 1
    ? `${first.state === "resolved" ? "Resolved" : first.priority.toUpperCase()}: ${first.message}`
    : `${batch.length} alerts, first: ${first.message}`;
  return {
    text: clip(esc(text), LIMITS.text),
    attachments: [
      ...shown.map(attachment),
      ...(rest > 0
        ? [{
          color: "#9e9e9e",
          blocks: [{
            type: "context",
            elements: [{ type: "mrkdwn", text: `… and ${rest} more alert${rest === 1 ? "" : "s"}` }],
          }],
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
        // Over plain http the request goes to the address the guard checked (DNS rebinding).
        const client = pinnedClient(opts.url, await guardTarget(opts.url, opts, { signal }));
        try {
          await postJson(opts.url, JSON.stringify(message(batch, opts.max_alerts)), {
            timeoutMs: opts.timeout_ms,
            signal,
            secrets: [opts.url],
            ...(client === undefined ? {} : { client }),
          });
        } finally {
          client?.close();
        }
      },
    };
  },
});
