/**
 * What a setting is (a flag, an environment variable or both, with its type, default and doc line) and
 * how a command reads its settings: a flag wins over its variable, which wins over the default.
 *
 * An empty value means unset for a variable (`HTTP_PORT=` in a compose file or a shell blanks it,
 * and the default applies) and is an error for a flag (`--http-port ""` is a mistake on the line).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { z } from "zod";

/** The environment as the settings read it. */
export type Env = Readonly<Record<string, string | undefined>>;

/** How a setting's text becomes its value. */
export interface Kind<T> {
  /** What a valid value is, completing "NAME must be …": `an integer from 1 to 65535`. */
  readonly expected: string;
  /** From the text to the value; a failure is reported with `expected`, not with zod's words. */
  readonly schema: z.ZodType<T, string>;
  /** A flag without a value (`--dry-run`): its presence is `true`. */
  readonly presence?: true;
}

export interface Setting<T = unknown> {
  /** The environment variable, when there is one. */
  readonly env?: string;
  /** The long flag without its dashes, when there is one. */
  readonly flag?: string;
  /** One-letter alias of the flag. */
  readonly short?: string;
  /** The flag's value as USAGE shows it (`DIR`); none for a presence flag. */
  readonly arg?: string;
  readonly kind: Kind<T>;
  readonly default: T;
  /** The default as the docs say it, when the value alone does not (`random per process`). */
  readonly defaultDoc?: string;
  /** One line for USAGE and the README: what it does, sentence case, no final period. */
  readonly doc: string;
  /** The value never appears in an error (or a log line). */
  readonly secret?: true;
}

/** A command's settings by the name its code reads them with. */
export type Settings = Readonly<Record<string, Setting>>;

/** The values of a command's settings. */
export type Values<S extends Settings> = {
  -readonly [K in keyof S]: S[K] extends Setting<infer T> ? T : never;
};

/** Declares a setting; its value type is its kind's, which the default must fit. */
export function setting<T>(s: Omit<Setting<T>, "default"> & { readonly default: NoInfer<T> }): Setting<T> {
  if (s.env === undefined && s.flag === undefined) throw new TypeError(`Setting "${s.doc}" has no name`);
  return s;
}

/** Reads `settings` from the command line and the environment. Throws a TypeError naming the setting. */
export function readSettings<S extends Settings>(settings: S, args: string[], env: Env): Values<S> {
  const options: Record<string, { type: "string" | "boolean"; short?: string }> = {};
  for (const s of Object.values(settings)) {
    if (s.flag === undefined) continue;
    options[s.flag] = {
      type: s.kind.presence ? "boolean" : "string",
      ...(s.short === undefined ? {} : { short: s.short }),
    };
  }
  const { values: flags } = parseArgs({ args, options, strict: true, allowPositionals: false });
  const out: Record<string, unknown> = {};
  for (const [key, s] of Object.entries(settings)) {
    const flag = s.flag === undefined ? undefined : flags[s.flag];
    if (typeof flag === "boolean") {
      out[key] = flag;
    } else if (flag !== undefined) {
      if (flag.trim() === "") throw new TypeError(`--${s.flag} must not be empty, got "${flag}"`);
      out[key] = parseValue(s, `--${s.flag}`, flag);
    } else {
      const text = s.env === undefined ? undefined : env[s.env];
      out[key] = text === undefined || text.trim() === "" ? s.default : parseValue(s, s.env!, text);
    }
  }
  return out as Values<S>;
}

function parseValue<T>(s: Setting<T>, name: string, text: string): T {
  const parsed = s.kind.schema.safeParse(text);
  if (parsed.success) return parsed.data;
  // A secret's value stays out of the message: it would reach the terminal and the log.
  const got = s.secret ? "" : `, got "${text}"`;
  throw new TypeError(`${name} must be ${s.kind.expected}${got}`, { cause: parsed.error });
}

/** Any text. */
export const text: Kind<string> = { expected: "a text", schema: z.string() };

/** The same kind, for a setting whose default is null (unset). */
export function orNull<T>(kind: Kind<T>): Kind<T | null> {
  return kind;
}

/** A flag whose presence means yes. */
export const presence: Kind<boolean> = {
  expected: "given without a value",
  schema: z.never(),
  presence: true,
};

/** A comma-separated list; blanks around and between commas are dropped. */
export function list(options: { lowerCase?: boolean } = {}): Kind<string[]> {
  return {
    expected: "a comma-separated list",
    schema: z.string().transform((s) =>
      s.split(",").map((x) => options.lowerCase ? x.trim().toLowerCase() : x.trim()).filter(Boolean)
    ),
  };
}

/** A number as `Number()` reads it, within bounds. */
export function number(min: number, max = Infinity): Kind<number> {
  return {
    expected: max === Infinity ? `a number of at least ${min}` : `a number from ${min} to ${max}`,
    schema: z.string().transform(Number).pipe(z.number().min(min).max(max)),
  };
}

/** A whole number as `Number()` reads it, within bounds. */
export function integer(min: number, max = Infinity): Kind<number> {
  return {
    expected: max === Infinity ? `an integer of at least ${min}` : `an integer from ${min} to ${max}`,
    schema: z.string().transform(Number).pipe(z.number().int().min(min).max(max)),
  };
}

/** One of `values`, compared as `normalize` leaves it. */
export function oneOf<const V extends string>(
  values: readonly V[],
  normalize: (s: string) => string = (s) => s,
): Kind<V> {
  return {
    expected: `one of ${values.join(", ")}`,
    schema: z.string().transform(normalize).pipe(z.enum(values as [V, ...V[]])),
  };
}

/** `true`/`1` or `false`/`0`. */
export const yesNo: Kind<boolean> = {
  expected: "one of true, 1, false, 0",
  schema: z.enum(["true", "1", "false", "0"]).transform((s) => s === "true" || s === "1"),
};
