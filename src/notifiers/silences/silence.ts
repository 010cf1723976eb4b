/**
 * A silence: matchers, a time range, who made it and why. `SilenceInput` is what `POST /api/silences`
 * takes (Alertmanager's shape in snake_case); `Silence` is the record kept on the silences topic (or
 * the local file), keyed by its id.
 *
 * @module
 */
import { z } from "zod";
import { compileMatcher, type Matcher, MatcherError } from "../../contract/matcher.ts";

const instant = z.iso.datetime({ offset: true });

export const MatcherInput = z.strictObject({
  name: z.string().min(1).max(72),
  value: z.string(),
  is_regex: z.boolean().default(false),
  is_equal: z.boolean().default(true),
});

/** Bounds of a silence, on the API and on records read back (anyone who may write the topic could write more). */
const MAX_MATCHERS = 32;
const MAX_CREATED_BY = 100;
const MAX_COMMENT = 1000;

export const SilenceInput = z.strictObject({
  matchers: z.array(MatcherInput).min(1).max(MAX_MATCHERS),
  starts_at: instant.optional(),
  ends_at: instant,
  created_by: z.string().trim().min(1).max(MAX_CREATED_BY),
  comment: z.string().trim().min(1).max(MAX_COMMENT),
});
export type SilenceInput = z.infer<typeof SilenceInput>;

/** The body of an extension: a new end. */
export const SilenceExtension = z.strictObject({ ends_at: instant });

/** The stored record; times are ISO 8601 UTC. */
export const Silence = z.looseObject({
  id: z.string().min(1).max(64),
  // Each alert is tested against every matcher of every silence: a record of 5,000 matchers or a
  // 500 KB comment is refused as the API would refuse it.
  matchers: z.array(MatcherInput).min(1).max(MAX_MATCHERS),
  starts_at: instant,
  ends_at: instant,
  created_by: z.string().max(MAX_CREATED_BY),
  comment: z.string().max(MAX_COMMENT),
  /** When this version was written: the newest version of an id wins. */
  updated_at: instant,
});
export type Silence = z.infer<typeof Silence>;

export type SilenceStatus = "pending" | "active" | "expired";

export function silenceStatus(s: Pick<Silence, "starts_at" | "ends_at">, now: number): SilenceStatus {
  if (now < Date.parse(s.starts_at)) return "pending";
  return now < Date.parse(s.ends_at) ? "active" : "expired";
}

/** A wrong field of a request, with its path (e.g. `matchers.0.value`). */
export class SilenceFieldError extends TypeError {
  override name = "SilenceFieldError";
  constructor(readonly field: string, message: string, options?: ErrorOptions) {
    super(`Field "${field}": ${message}`, options);
  }
}

/**
 * Compiles a silence's matchers; throws a SilenceFieldError naming the matcher. A silence whose every
 * matcher also holds for an empty value would silence alerts that lack the field too, which is
 * nearly everything: refused, as Alertmanager does.
 */
export function compileMatchers(matchers: Silence["matchers"]): Matcher[] {
  const compiled = matchers.map((m, i) => {
    try {
      return compileMatcher(m);
    } catch (err) {
      if (err instanceof MatcherError) {
        throw new SilenceFieldError(`matchers.${i}.${err.field}`, err.message, { cause: err });
      }
      throw err;
    }
  });
  if (compiled.every((m) => m.matchesEmpty)) {
    throw new SilenceFieldError(
      "matchers",
      "At least one matcher must not match an empty value, or the silence holds for every alert",
    );
  }
  return compiled;
}

/** Checks a request's times against `now`; returns the record to write. */
export function newSilence(input: SilenceInput, id: string, now: number): Silence {
  compileMatchers(input.matchers);
  const startsAt = input.starts_at === undefined ? now : Math.max(now, Date.parse(input.starts_at));
  const endsAt = Date.parse(input.ends_at);
  if (endsAt <= now) throw new SilenceFieldError("ends_at", `"${input.ends_at}" is not in the future`);
  if (endsAt <= startsAt) {
    throw new SilenceFieldError("ends_at", `"${input.ends_at}" is not after starts_at`);
  }
  return {
    id,
    matchers: input.matchers,
    starts_at: new Date(startsAt).toISOString(),
    ends_at: new Date(endsAt).toISOString(),
    created_by: input.created_by,
    comment: input.comment,
    updated_at: new Date(now).toISOString(),
  };
}
