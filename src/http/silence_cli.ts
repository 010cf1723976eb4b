/**
 * `deno task silence`: list, add, extend and expire silences through a running service's HTTP API
 * (`/api/silences`), as the dashboard does. A matcher is written as in amtool: `name=value`,
 * `name!=value`, `name=~regex`, `name!~regex`; `*` and `?` in an equality value are wildcards.
 *
 *     deno task silence add 'sensor_id=temp-*' rule_id=temperature-out-of-range --for 2h --by ana --comment "recalibration"
 *     deno task silence list
 *     deno task silence extend 3f2c… --for 4h
 *     deno task silence expire 3f2c…
 *
 * Exit codes: 0 done, 1 the API refused or could not be reached (said in one line), 2 a wrong usage.
 *
 * @module
 */
import { usage } from "../config/docs.ts";
import { readSettings, type Values } from "../config/setting.ts";
import { commands } from "../config/settings.ts";
import { env } from "../env.ts";
import { print } from "../log.ts";
import { visible } from "../terminal.ts";
import type { MatcherSpec } from "../contract/matcher.ts";
import type { SilenceView } from "../notifiers/silences/store.ts";

const command = commands.silence;
type Options = Values<typeof command.settings>;

/** Thrown for a wrong command line: exit 2 with the message. */
class UsageError extends TypeError {
  override name = "UsageError";
}

/** `name=value`, `name!=value`, `name=~regex`, `name!~regex`. */
export function parseMatcher(text: string): MatcherSpec {
  const m = /^([A-Za-z_][A-Za-z0-9_.-]*)(=~|!~|!=|=)(.*)$/s.exec(text);
  if (m === null) {
    throw new UsageError(`Matcher "${text}" must be name=value, name!=value, name=~regex or name!~regex`);
  }
  const op = m[2]!;
  return { name: m[1]!, value: m[3]!, is_regex: op.endsWith("~"), is_equal: op.startsWith("=") };
}

/** The command line split into positionals and the settings' flags (a flag's value is not positional). */
export function splitArgs(args: readonly string[]): { positionals: string[]; flags: string[] } {
  const takesValue = new Set(
    Object.values(command.settings).flatMap((s) =>
      "flag" in s && s.flag !== undefined && !s.kind.presence ? [`--${s.flag}`] : []
    ),
  );
  const positionals: string[] = [];
  const flags: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (!a.startsWith("-")) positionals.push(a);
    else {
      flags.push(a);
      if (takesValue.has(a) && i + 1 < args.length) flags.push(args[++i]!);
    }
  }
  return { positionals, flags };
}

/** amtool's operators: `=`, `!=`, `=~`, `!~`. */
function operator(m: MatcherSpec): string {
  return m.is_regex ? (m.is_equal ? "=~" : "!~") : (m.is_equal ? "=" : "!=");
}

/**
 * One line per silence. Whoever may write silences wrote these texts: with their control characters
 * as escapes, a comment like "\r\x1b[2K" cannot erase its own line from the operator's terminal.
 */
export function describeSilence(s: SilenceView): string {
  const matchers = s.matchers.map((m) => `${m.name}${operator(m)}${m.value}`);
  return visible(
    `${s.id}  ${s.status.padEnd(7)}  until ${s.ends_at}  ${
      matchers.join(" ")
    }  (${s.created_by}: ${s.comment})`,
  );
}

async function call(
  opts: Options,
  method: string,
  path: string,
  body?: unknown,
): Promise<Record<string, unknown>> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (opts.apiToken !== null) headers.authorization = `Bearer ${opts.apiToken}`;
  const url = `${opts.url.replace(/\/+$/, "")}${path}`;
  let res: Response;
  try {
    res = await fetch(url, {
      method,
      headers,
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  } catch (err) {
    throw new Error(`Cannot reach ${opts.url}: ${(err as Error).message} (set --url or SILENCES_API_URL)`, {
      cause: err,
    });
  }
  const answer = await res.json().catch(() => ({})) as Record<string, unknown>;
  if (!res.ok) throw new Error(`${method} ${path} answered ${res.status}: ${answer.error ?? res.statusText}`);
  return answer;
}

/** Runs one command line; returns the exit code. */
export async function main(args: readonly string[]): Promise<number> {
  const { positionals, flags } = splitArgs(args);
  let opts: Options;
  try {
    opts = readSettings(command.settings, flags, env);
  } catch (err) {
    print(visible((err as Error).message));
    return 2;
  }
  const [verb, ...rest] = positionals;
  if (opts.help || verb === undefined) {
    print(usage(command));
    return opts.help ? 0 : 2;
  }
  const ends = () => new Date(Date.now() + opts.duration).toISOString();
  try {
    switch (verb) {
      case "list": {
        const { silences } = await call(opts, "GET", "/api/silences") as { silences: SilenceView[] };
        for (const s of silences) print(describeSilence(s));
        if (silences.length === 0) print("No silences");
        return 0;
      }
      case "add": {
        if (rest.length === 0) {
          throw new UsageError("add needs at least one matcher, e.g. sensor_id=temp-001");
        }
        if (opts.createdBy === null || opts.comment === null) {
          throw new UsageError("add needs --by and --comment");
        }
        const { silence } = await call(opts, "POST", "/api/silences", {
          matchers: rest.map(parseMatcher),
          ends_at: ends(),
          created_by: opts.createdBy,
          comment: opts.comment,
        }) as { silence: SilenceView };
        print(describeSilence(silence));
        return 0;
      }
      case "extend":
      case "expire": {
        const [id] = rest;
        if (id === undefined || rest.length > 1) throw new UsageError(`${verb} needs one silence id`);
        const path = `/api/silences/${encodeURIComponent(id)}`;
        const { silence } = verb === "extend"
          ? await call(opts, "PUT", path, { ends_at: ends() }) as { silence: SilenceView }
          : await call(opts, "DELETE", path) as { silence: SilenceView };
        print(describeSilence(silence));
        return 0;
      }
    }
    throw new UsageError(`Unknown command "${verb}": use list, add, extend or expire`);
  } catch (err) {
    print(visible((err as Error).message));
    return err instanceof UsageError ? 2 : 1;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
