/**
 * The one logger. Human lines on a terminal, JSON lines otherwise; `LOG_LEVEL` picks the level.
 * Field values pass through `redact`, so a secret registered at startup never reaches a log line.
 *
 * @module
 */

import { readSettings } from "./config/setting.ts";
import { logLevel } from "./config/settings.ts";
import { env } from "./env.ts";
import { visible } from "./terminal.ts";

/** A log line's level; `LOG_LEVEL` sets the lowest that is written. */
export type Level = "debug" | "info" | "warn" | "error";
const ORDER: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };
const COLOUR: Record<Level, string> = {
  debug: "\x1b[90m",
  info: "\x1b[36m",
  warn: "\x1b[33m",
  error: "\x1b[31m",
};

/** A log line's structured fields (`rule`, `sensor_id`, …); values pass through `redact`. */
export type Fields = Record<string, unknown>;

/** Writes log lines: `msg` in sentence case, the values in `fields`. */
export interface Logger {
  /** Writes a line at level debug. */
  debug(msg: string, fields?: Fields): void;
  /** Writes a line at level info. */
  info(msg: string, fields?: Fields): void;
  /** Writes a line at level warn. */
  warn(msg: string, fields?: Fields): void;
  /** Writes a line at level error. */
  error(msg: string, fields?: Fields): void;
  /** A logger that adds `fields` to every line. */
  child(fields: Fields): Logger;
  /** Whether a line at `level` would be written: skip building costly fields when not. */
  enabled(level: Level): boolean;
}

export interface LogSink {
  write(line: string): void;
  pretty: boolean;
}

const encoder = new TextEncoder();
const stderrSink: LogSink = {
  write: (line) => Deno.stderr.writeSync(encoder.encode(line + "\n")),
  pretty: Deno.stderr.isTerminal() && !Deno.noColor,
};

/**
 * Each secret with the forms it takes once escaped: a log line, an error that quotes a receiver's JSON
 * answer and a DLQ record each add a round of JSON string escaping, so a secret with `"`, `\` or a
 * control character in it reads differently in each (`a"b` → `a\"b` → `a\\\"b`).
 */
const secrets = new Map<string, string[]>();
/** Longest first, so a secret that contains another (a URL and its path) is replaced whole. */
let forms: string[] = [];
const ESCAPE_ROUNDS = 3;

function addSecret(value: string): void {
  if (secrets.has(value)) return;
  const all = [value];
  for (let i = 0, s = value; i < ESCAPE_ROUNDS; i++) all.push(s = JSON.stringify(s).slice(1, -1));
  secrets.set(value, [...new Set(all)]);
  forms = [...new Set([...secrets.values()].flat())].sort((a, b) => b.length - a.length);
}

/** Registers a value that must never appear in a log line or an error text. */
export function registerSecret(value: string | undefined): void {
  if (value !== undefined && value.length >= 4) addSecret(value);
  // A secret URL's token is usually its path (Slack's /services/T…/B…/…), and receivers echo the
  // path in their error answers ("No route for /services/…"), which end up in errors and DLQ records.
  if (value !== undefined && /^https?:\/\//i.test(value) && URL.canParse(value)) {
    const url = new URL(value);
    const rest = `${url.pathname}${url.search}`;
    if (rest.length >= 8) addSecret(rest);
  }
}

/**
 * Replaces every registered secret, raw or JSON-escaped (and URL credentials), in `text` with
 * `[REDACTED]`.
 */
export function redact(text: string): string {
  let out = text;
  for (const s of forms) if (out.includes(s)) out = out.replaceAll(s, "[REDACTED]");
  return out.replace(/(\/\/)[^/\s:@]+:[^/\s@]+@/g, "$1[REDACTED]@");
}

/**
 * LOG_LEVEL as declared in src/config/settings.ts. The logger exists before a command reads its
 * settings, so a wrong value means the default here; the command then refuses it with its name.
 */
function levelFromEnv(): Level {
  try {
    return readSettings({ logLevel }, [], env).logLevel;
  } catch {
    return logLevel.default;
  }
}

export function createLogger(
  options: { level?: Level; sink?: LogSink; fields?: Fields } = {},
): Logger {
  const level = options.level ?? levelFromEnv();
  const sink = options.sink ?? stderrSink;
  const base = options.fields ?? {};
  const log = (lvl: Level, msg: string, fields?: Fields) => {
    if (ORDER[lvl] < ORDER[level]) return;
    const all = { ...base, ...fields };
    // Redacted before escaping (each string, as it is) and after (the line, for a secret that was
    // already escaped inside a value, e.g. a receiver's JSON answer quoted in an error).
    if (sink.pretty) {
      const time = new Date().toISOString().slice(11, 23);
      // On a terminal, text from events (sensor ids, receiver answers) cannot act on it.
      const extra = Object.entries(all).map(([k, v]) => `${k}=${visible(format(v))}`).join(" ");
      sink.write(
        redact(
          `${time} ${COLOUR[lvl]}${lvl.toUpperCase().padEnd(5)}\x1b[0m ${visible(redact(msg))}${
            extra ? ` ${extra}` : ""
          }`,
        ),
      );
    } else {
      sink.write(
        redact(
          JSON.stringify(
            { time: new Date().toISOString(), level: lvl, msg: redact(msg), ...all },
            errorReplacer,
          ),
        ),
      );
    }
  };
  return {
    debug: (m, f) => log("debug", m, f),
    info: (m, f) => log("info", m, f),
    warn: (m, f) => log("warn", m, f),
    error: (m, f) => log("error", m, f),
    child: (fields) => createLogger({ level, sink, fields: { ...base, ...fields } }),
    enabled: (lvl) => ORDER[lvl] >= ORDER[level],
  };
}

function format(v: unknown): string {
  if (v instanceof Error) return JSON.stringify(redact(v.message));
  if (typeof v === "string") {
    const r = redact(v);
    return /[\s"=]/.test(r) ? JSON.stringify(r) : r;
  }
  return JSON.stringify(v, errorReplacer) ?? String(v);
}

function errorReplacer(_key: string, v: unknown): unknown {
  if (typeof v === "string") return redact(v);
  return v instanceof Error ? { name: v.name, message: redact(v.message) } : v;
}

/** The process logger. */
export const logger: Logger = createLogger();

/** Output meant for the operator's terminal (stats table, hints): stdout, not the log. */
export function print(text: string): void {
  Deno.stdout.writeSync(encoder.encode(text + "\n"));
}
