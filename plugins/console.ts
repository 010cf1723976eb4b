/**
 * console: one readable line per alert on a terminal (coloured by priority), JSON lines otherwise.
 */
import { z } from "zod";
import { defineNotifier, type Notification, terminalSafeJson, visible } from "@sensor-rules/engine/plugin";

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

export function formatPretty(n: Notification, colour: boolean): string {
  const a = n.alert;
  const tag = visible(a.state === "resolved" ? "RESOLVED" : a.priority.toUpperCase());
  const head = colour
    ? `${a.state === "resolved" ? "\x1b[32m" : COLOUR[a.priority] ?? ""}${tag}\x1b[0m`
    : tag;
  return `${visible(a.timestamp)} ${head} [${visible(a.rule_id)}] ${visible(a.message)} (sensor=${
    visible(a.sensor_id)
  } value=${visible(a.value)}${a.threshold === null ? "" : ` threshold=${visible(a.threshold)}`} alert_id=${
    visible(a.alert_id)
  })`;
}

/** The alert as one JSON line, with nothing a terminal acts on (it may be one). */
export function formatJson(n: Notification): string {
  return terminalSafeJson(JSON.stringify(n.alert));
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
