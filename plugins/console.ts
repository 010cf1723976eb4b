/**
 * console: one readable line per alert on a terminal (coloured by priority), JSON lines otherwise.
 */
import { z } from "zod";
import { defineNotifier, type Notification } from "../src/notifiers/plugin.ts";

export const options = z.strictObject({
  /** `auto`: pretty on a terminal, JSON otherwise. */
  format: z.enum(["auto", "pretty", "json"]).default("auto"),
  stream: z.enum(["stdout", "stderr"]).default("stdout"),
});
export type Options = z.infer<typeof options>;

const COLOUR: Record<string, string> = {
  low: "\x1b[37m",
  normal: "\x1b[36m",
  high: "\x1b[33m",
  critical: "\x1b[1;31m",
};
const encoder = new TextEncoder();

/**
 * What a terminal acts on or that changes how a line reads: C0 controls (newline, ESC that starts
 * ANSI sequences, BEL), DEL, C1 controls (U+009B is a one-character CSI), bidi marks, overrides and
 * isolates (Trojan Source), and the Unicode line and paragraph separators.
 */
// deno-lint-ignore no-control-regex
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
const NAMED: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };
const hex = (c: string, width: number) => c.charCodeAt(0).toString(16).padStart(width, "0");

/**
 * `value` with each character a terminal would act on shown as an escape (`\n`, `\x1b`, `\u202e`):
 * event fields cannot colour, move, retitle or forge lines of the operator's terminal.
 */
export function visible(value: unknown): string {
  return String(value).replace(
    UNSAFE,
    (c) => NAMED[c] ?? (c <= "\xff" ? `\\x${hex(c, 2)}` : `\\u${hex(c, 4)}`),
  );
}

export function formatPretty(n: Notification, colour: boolean): string {
  const a = n.alert;
  const tag = a.state === "resolved" ? "RESOLVED" : a.priority.toUpperCase();
  const head = colour
    ? `${a.state === "resolved" ? "\x1b[32m" : COLOUR[a.priority] ?? ""}${tag}\x1b[0m`
    : tag;
  return `${visible(a.timestamp)} ${head} [${visible(a.rule_id)}] ${visible(a.message)} (sensor=${
    visible(a.sensor_id)
  } value=${visible(a.value)}${a.threshold === null ? "" : ` threshold=${visible(a.threshold)}`} alert_id=${
    visible(a.alert_id)
  })`;
}

/**
 * The alert as one JSON line. JSON.stringify escapes C0 controls only; the rest of UNSAFE is
 * escaped too (`\u009b`), which JSON readers decode to the same value.
 */
export function formatJson(n: Notification): string {
  return JSON.stringify(n.alert).replace(UNSAFE, (c) => `\\u${hex(c, 4)}`);
}

/** `writeSync` may write less than asked (a full pipe): loop until every byte is out. */
function writeAll(out: { writeSync(p: Uint8Array): number }, bytes: Uint8Array): void {
  for (let done = 0; done < bytes.length;) done += out.writeSync(bytes.subarray(done));
}

export default defineNotifier({
  apiVersion: 1,
  name: "console",
  options,
  create(opts: Options) {
    const out = opts.stream === "stdout" ? Deno.stdout : Deno.stderr;
    const pretty = opts.format === "pretty" || (opts.format === "auto" && out.isTerminal());
    const colour = pretty && out.isTerminal() && !Deno.noColor;
    return {
      notify(batch) {
        const text = batch.map((n) => pretty ? formatPretty(n, colour) : formatJson(n)).join("\n");
        writeAll(out, encoder.encode(text + "\n"));
        return Promise.resolve();
      },
    };
  },
});
