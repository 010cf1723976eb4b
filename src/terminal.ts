/**
 * What a terminal acts on or that changes how a line reads: C0 controls (newline, ESC that starts
 * ANSI sequences, BEL), DEL, C1 controls (U+009B is a one-character CSI), bidi marks, overrides and
 * isolates (Trojan Source), and the Unicode line and paragraph separators.
 */
const UNSAFE =
  // deno-lint-ignore no-control-regex
  /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
const NAMED: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };

const unicodeEscape = (c: string): string => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`;

/**
 * `value` with each character a terminal would act on shown as an escape (`\n`, `\x1b`, `\u202e`):
 * text from events cannot colour, move, retitle or forge lines of the operator's terminal.
 */
export function visible(value: unknown): string {
  return String(value).replace(
    UNSAFE,
    (c) =>
      NAMED[c] ?? (c <= "\xff" ? `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}` : unicodeEscape(c)),
  );
}

/**
 * JSON text (from JSON.stringify, which escapes C0 controls only) with the rest of what a terminal
 * acts on escaped as well (`\u009b`, `\u202e`): JSON readers decode it to the same value.
 */
export function terminalSafeJson(json: string): string {
  return json.replace(UNSAFE, unicodeEscape);
}
