/**
 * webhook: POSTs each notification as JSON (the alert, its triggering event, the rule). With a
 * `secret`, requests are signed per Standard Webhooks: `webhook-id` (the same on every retry and
 * redelivery of one notification), `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256>`.
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

/** An HTTP token (RFC 9110): what a header name may be. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** What fetch strips from both ends of a header value (a token read from a file ends in a newline). */
const isHttpSpace = (c: number) => c === 0x09 || c === 0x0a || c === 0x0d || c === 0x20;

/**
 * The index of the first character of a header value that fetch, or hyper when it sends the request,
 * refuses once the ends are stripped: any but a tab, U+0020–U+007E and U+0080–U+00FF. -1 when none.
 */
export function badHeaderCharAt(value: string): number {
  let start = 0;
  let end = value.length;
  while (start < end && isHttpSpace(value.charCodeAt(start))) start++;
  while (end > start && isHttpSpace(value.charCodeAt(end - 1))) end--;
  for (let i = start; i < end; i++) {
    const c = value.charCodeAt(i);
    if (c !== 0x09 && (c < 0x20 || c === 0x7f || c > 0xff)) return i;
  }
  return -1;
}

/**
 * Checked at load: fetch throws a TypeError on such a header before sending, which the delivery policy
 * reads as the plugin's failure and retries, so every notification waited `give_up_after` for the DLQ
 * and none was ever delivered, while the file loaded without a word. The value is not quoted (it may
 * be a credential).
 */
const headers = z.record(z.string(), z.string()).superRefine((all, ctx) => {
  for (const [name, value] of Object.entries(all)) {
    if (!TOKEN.test(name)) {
      ctx.addIssue({
        code: "custom",
        message: `header name ${
          JSON.stringify(name)
        } is not an HTTP token (letters, digits and !#$%&'*+-.^_\`|~)`,
      });
    }
    const at = badHeaderCharAt(value);
    if (at !== -1) {
      // The code point, not half of it: an emoji is one character to the operator.
      const code = value.codePointAt(at)!.toString(16).toUpperCase().padStart(4, "0");
      ctx.addIssue({
        code: "custom",
        path: [name],
        message: `character U+${code} at index ${at} cannot be sent in an HTTP header ` +
          "(a tab, U+0020-U+007E and U+0080-U+00FF can)",
      });
    }
  }
});

export const options = z.strictObject({
  url: z.url({ protocol: /^https?$/ }),
  /** Extra request headers (e.g. an Authorization header from `${ENV_VAR}`). */
  headers: headers.default({}),
  timeout_ms: z.int().positive().default(10_000),
  /** `whsec_<base64 key>`, as Standard Webhooks receivers expect it. */
  secret: z.string().regex(/^whsec_[A-Za-z0-9+/]+={0,2}$/, 'must look like "whsec_<base64>"').optional(),
  /** Loopback, private, link-local and metadata addresses are refused unless allowed here. */
  ...targetOptions,
});
export type Options = z.infer<typeof options>;

const encoder = new TextEncoder();

/** `v1,<base64 HMAC-SHA256 of "id.timestamp.body">` with the key inside `whsec_<base64>`. */
export async function sign(secret: string, id: string, timestamp: number, body: string): Promise<string> {
  const raw = Uint8Array.from(atob(secret.replace(/^whsec_/, "")), (c) => c.charCodeAt(0));
  const key = await crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const mac = new Uint8Array(
    await crypto.subtle.sign("HMAC", key, encoder.encode(`${id}.${timestamp}.${body}`)),
  );
  return `v1,${btoa(String.fromCharCode(...mac))}`;
}

function item(n: Notification) {
  const { event, ...alert } = n.alert;
  return {
    alert,
    event: event ?? null,
    rule: {
      id: n.alert.rule_id,
      description: n.alert.description ?? null,
      priority: n.alert.priority,
      threshold: n.alert.threshold,
      labels: n.alert.labels,
    },
  };
}

/** One notification: `{type: "alert", id, alert, event, rule}`; a group: `{type: "alert.group", id, notifications}`. */
export function payload(id: string, batch: Notification[]): string {
  return JSON.stringify(
    batch.length === 1
      ? { type: "alert", id, ...item(batch[0]!) }
      : { type: "alert.group", id, notifications: batch.map(item) },
  );
}

/** Header names that carry a credential. */
const CREDENTIAL_HEADER = /authorization|token|key|secret|signature|password|cookie|auth/i;

/** The credential values of `headers`: each whole, and the token of a `<scheme> <token>` value. */
function credentialValues(headers: Record<string, string>): string[] {
  const out: string[] = [];
  for (const [name, value] of Object.entries(headers)) {
    if (!CREDENTIAL_HEADER.test(name)) continue;
    out.push(value);
    const token = /^\S+\s+(\S.*)$/.exec(value)?.[1];
    if (token !== undefined) out.push(token);
  }
  return out;
}

export default defineNotifier({
  apiVersion: 1,
  name: "webhook",
  options,
  create(opts: Options, ctx) {
    if (opts.secret !== undefined) ctx.registerSecret(opts.secret);
    // Credentials written as they are in `headers` (not through `${ENV}`, which registers them):
    // receivers echo them in their refusals, which end up in the log and the DLQ record.
    const credentials = credentialValues(opts.headers);
    for (const c of credentials) ctx.registerSecret(c);
    const secrets = opts.secret === undefined ? credentials : [opts.secret, ...credentials];
    return {
      async notify(batch, { id, signal }) {
        const target = await guardTarget(opts.url, opts, { signal });
        const body = payload(id, batch);
        const timestamp = Math.floor(Date.now() / 1000);
        const headers: Record<string, string> = {
          ...opts.headers,
          "webhook-id": id,
          "webhook-timestamp": String(timestamp),
        };
        if (opts.secret !== undefined) {
          headers["webhook-signature"] = await sign(opts.secret, id, timestamp, body);
        }
        // Over plain http the request goes to the address the guard checked (DNS rebinding).
        const client = pinnedClient(opts.url, target);
        try {
          await postJson(opts.url, body, {
            headers,
            timeoutMs: opts.timeout_ms,
            signal,
            secrets,
            ...(client === undefined ? {} : { client }),
          });
        } finally {
          client?.close();
        }
      },
    };
  },
});
