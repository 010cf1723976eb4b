/**
 * The silences every instance shares: a map of id → newest version, fed by a `SilenceLog` (the
 * compacted silences topic, or a local file) and written through it. Listeners hear once per batch of
 * changes, and of every start and end as its time comes, so held notifications are looked at again then.
 * Records beyond the API's limits are refused (`refused`), and an alert is tested only against the
 * silences that may hold for it (see `silencing`).
 *
 * @module
 */
import type { SensorAlert } from "../../contract/schemas.ts";
import type { Logger } from "../../log.ts";
import type { Matcher } from "../../contract/matcher.ts";
import {
  compileMatchers,
  newSilence,
  Silence,
  SilenceFieldError,
  type SilenceInput,
  type SilenceStatus,
} from "./silence.ts";

/** Where silences (and the alerts they hold) are kept: read from the start and followed, and written. */
export interface SilenceLog<T = Silence> {
  /** Reads what exists and follows it; resolves once everything written before the call is applied. */
  start(apply: (id: string, record: unknown) => void): Promise<void>;
  /** Durable when it resolves; null forgets the id (a tombstone). */
  write(id: string, record: T | null): Promise<void>;
  /** Resolves once everything written before the call is applied (a log that is not shared: at once). */
  caughtUp?(): Promise<void>;
  close(): Promise<void>;
}

/** How long an expired silence stays listed before it is forgotten (Alertmanager's default: 120 h). */
export const SILENCE_RETENTION_MS = 120 * 3600_000;

/** A silence as the API lists it. */
export type SilenceView = Silence & { status: SilenceStatus };

export interface SilencesOptions {
  log: SilenceLog;
  logger: Logger;
  now?: () => number;
  /** Most silences pending or in force at once (default `MAX_SILENCES`). */
  maxSilences?: number;
  /**
   * Most distinct regex and wildcard matchers across the silences pending or in force (default
   * `MAX_SILENCE_PATTERNS`).
   */
  maxPatterns?: number;
}

/**
 * Every alert is matched against the silences in force: a bound keeps that cost bounded whoever holds
 * the token (32 matchers of 256 characters each, at most). Applied to the API's creates and to the
 * records read from the log alike (Alertmanager's `--silences.max-silences` refuses new ones too).
 */
export const MAX_SILENCES = 1000;

/**
 * Most distinct pattern matchers (a regex, or a value with `*` or `?`; by name, operator and text)
 * across the silences pending or in force: each runs at most once per alert (`silencing` reuses a
 * result across silences), so this bounds the pattern work per alert, whatever the silences' count.
 * Measured (scripts/bench/silences_cost.ts): ~2.5 µs per run of `.*(a|f|e|t|y).*` on a short label;
 * 1,000 silences of 31 such regexes and one of their own took 84 ms per alert when each silence ran
 * its own, 4.8 ms with a result reused (1,001 distinct); 2,000 distinct ones, 11 ms.
 */
export const MAX_SILENCE_PATTERNS = 2000;

/** A new silence beyond `maxSilences`: the caller expires some first. */
export class SilenceLimitError extends RangeError {
  override name = "SilenceLimitError";
}

interface Entry {
  silence: Silence;
  /**
   * Its matchers, each with what names its test (name, operator, text: equal ones give equal
   * results), or null for a plain comparison, which costs less than looking its result up.
   */
  tests: { matcher: Matcher; key: string | null }[];
  /** Its times, parsed once: a status looked at per alert and per silence must not parse them. */
  start: number;
  end: number;
  /** The distinct pattern matchers' keys (regexes and wildcards), counted against `maxPatterns`. */
  regexes: string[];
  /** `rule_id`/`sensor_id` and the value it must equal, when it has such a matcher: see `#index`. */
  indexKey: string | null;
  /** When its id was first kept: `silencing` answers in this order, as the map did. */
  seq: number;
}

/** The silences' counts, taken once per batch of records at the batch's `now`, kept up as it applies. */
interface Batch {
  now: number;
  live: number;
  /** Per distinct pattern matcher's key, how many silences pending or in force hold it. */
  regexes: Map<string, number>;
  /** Ids of the records refused for a limit. */
  refused: string[];
  done: () => void;
  settled: Promise<void>;
}

/** setTimeout's longest delay (~24.8 days); a later boundary re-arms from there. */
const MAX_DELAY = 2 ** 31 - 1;

/** Fields of an alert silences are indexed by: nearly every silence names a rule or a sensor. */
const INDEXED = ["rule_id", "sensor_id"] as const;

/** Ids named in the one warning per batch of refused records. */
const REFUSED_NAMED = 10;

const matcherKey = (m: Matcher) =>
  `${m.is_regex ? "~" : "="}${m.is_equal ? "" : "!"}${m.name}\u0000${m.value}`;

/** A regex or a wildcard value: what costs more than a comparison, and whose result is reused. */
const isPattern = (m: Matcher) => m.is_regex || /[*?]/.test(m.value);

/** The key of the index a plain equality on `field` = `value` sits under. */
const indexKeyOf = (field: string, value: string) => `${field}\u0000${value}`;

function entryOf(silence: Silence, matchers: Matcher[], seq: number): Entry {
  // A matcher repeated within a silence is tested once (31 copies of one regex were 31 lookups).
  const unique = new Map(matchers.map((m) => [matcherKey(m), m]));
  const tests = [...unique].map(([key, m]) => ({ matcher: m, key: isPattern(m) ? key : null }));
  // A plain `=` on rule_id or sensor_id (no wildcard): the silence holds only for alerts of that
  // value, so an alert of another is never tested against it.
  const plain = matchers.find((m) =>
    (INDEXED as readonly string[]).includes(m.name) && m.is_equal && !m.is_regex && !/[*?]/.test(m.value)
  );
  return {
    silence,
    tests,
    start: Date.parse(silence.starts_at),
    end: Date.parse(silence.ends_at),
    regexes: [...unique].filter(([, m]) => isPattern(m)).map(([key]) => key),
    indexKey: plain === undefined ? null : indexKeyOf(plain.name, plain.value),
    seq,
  };
}

function statusOf(e: Entry, now: number): SilenceStatus {
  if (now < e.start) return "pending";
  return now < e.end ? "active" : "expired";
}

export class Silences {
  readonly #opts: SilencesOptions;
  readonly #now: () => number;
  readonly #byId = new Map<string, Entry>();
  /** Silences by `indexKey`; those without one are in `#unindexed`, tested against every alert. */
  readonly #index = new Map<string, Set<Entry>>();
  readonly #unindexed = new Set<Entry>();
  #seq = 0;
  /** Moves on every change of a silence and at every start and end of one (see `version`). */
  #version = 0;
  /** The next start or end of a silence (ms since the epoch), Infinity if none. */
  #next = Infinity;
  /** Records applied since the last flush: counted and announced once (`#flush`). */
  #batch: Batch | null = null;
  readonly #listeners = new Set<() => void>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #gcTimer: ReturnType<typeof setInterval> | undefined;
  #closed = false;
  /** The edit in progress: edits run one at a time (see `#serial`). */
  #editing: Promise<unknown> = Promise.resolve();
  /** Alerts whose notification a silence held back (counted by the notifier stage's gate). */
  suppressed = 0;
  /** Held alerts notified when their silence ended (counted by the gate). */
  released = 0;
  /** How many alerts are held now, by this instance or another (the gate says). */
  heldCount: () => number = () => 0;
  /** Records read from the log and refused for a limit (`maxSilences`, `maxPatterns`). */
  refused = 0;
  /** Matcher tests `silencing` ran (a result reused within one call is not counted): its work. */
  matcherTests = 0;

  constructor(opts: SilencesOptions) {
    this.#opts = opts;
    this.#now = opts.now ?? Date.now;
  }

  /** Loads the silences and follows them; garbage-collects expired ones hourly. */
  async start(): Promise<void> {
    await this.#opts.log.start((id, value) => this.#receive(id, value));
    this.#gcTimer = setInterval(() => {
      this.gc().catch((error) => this.#opts.logger.warn("Forgetting expired silences failed", { error }));
    }, 3600_000);
    await this.gc();
  }

  /** Resolves once the records applied so far are announced (listeners called, timer armed). */
  settled(): Promise<void> {
    return this.#batch?.settled ?? Promise.resolve();
  }

  /** Called once per batch of changes and at every start and end of a silence. */
  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Moves on every silence kept or dropped and at every start and end (as `onChange` is called), so a
   * view of what `silencing` answers (`/api/alerts`) can be reused while it and `nextChangeAt` hold.
   */
  get version(): number {
    return this.#version;
  }

  /** When the next silence starts or ends (ms since the epoch): `silencing` may answer otherwise from then. */
  get nextChangeAt(): number {
    return this.#next;
  }

  /** Every silence not yet forgotten, newest end first. */
  list(): SilenceView[] {
    const now = this.#now();
    return [...this.#byId.values()]
      .map((e) => ({ ...e.silence, status: statusOf(e, now) }))
      .sort((a, b) => b.ends_at.localeCompare(a.ends_at));
  }

  get(id: string): SilenceView | null {
    const e = this.#byId.get(id);
    return e === undefined ? null : { ...e.silence, status: statusOf(e, this.#now()) };
  }

  /** Silences in force now. */
  get active(): number {
    const now = this.#now();
    let n = 0;
    for (const e of this.#byId.values()) if (statusOf(e, now) === "active") n++;
    return n;
  }

  /**
   * Ids of the silences in force now that match `alert` (empty: not silenced). Only the silences
   * indexed under the alert's rule_id or sensor_id, and those with no such matcher, are tested; a
   * matcher several silences share (same name, operator, text) is tested once. So its work is at most
   * the matchers of the silences it may match, with each distinct regex run once (`maxPatterns`).
   */
  silencing(alert: SensorAlert): string[] {
    if (this.#byId.size === 0) return [];
    const now = this.#now();
    const found: Entry[] = [];
    const known = new Map<string, boolean>();
    const test = (e: Entry) => {
      if (now < e.start || now >= e.end) return;
      for (const { matcher, key } of e.tests) {
        let ok: boolean | undefined;
        if (key === null) {
          this.matcherTests++;
          ok = matcher.test(alert);
        } else {
          ok = known.get(key);
          if (ok === undefined) {
            this.matcherTests++;
            ok = matcher.test(alert);
            known.set(key, ok);
          }
        }
        if (!ok) return;
      }
      found.push(e);
    };
    const fields = alert as unknown as Record<string, unknown>;
    for (const field of INDEXED) {
      const v = fields[field];
      // As the matcher reads it: a field that is not a string is "".
      const indexed = this.#index.get(indexKeyOf(field, typeof v === "string" ? v : ""));
      if (indexed !== undefined) { for (const e of indexed) test(e); }
    }
    for (const e of this.#unindexed) test(e);
    if (found.length > 1) found.sort((a, b) => a.seq - b.seq);
    return found.map((e) => e.silence.id);
  }

  /** Writes a new silence; throws SilenceFieldError for a wrong field. */
  create(input: SilenceInput): Promise<SilenceView> {
    return this.#serial(() => this.#create(input));
  }

  /** Moves the end of a silence that has not ended; null when there is no such silence. */
  extend(id: string, endsAt: string): Promise<SilenceView | null> {
    return this.#serial(() => this.#extend(id, endsAt));
  }

  /** Ends a silence now (a pending one never starts); null when there is no such silence. */
  expire(id: string): Promise<SilenceView | null> {
    return this.#serial(() => this.#expire(id));
  }

  /**
   * Runs edits one after the other, each on the state the one before left: two edits of one silence
   * read at once were both stamped from the same version, so this instance kept the first written and
   * the topic (and so a restart) the last; and concurrent creates all passed the limit's check.
   */
  #serial<T>(edit: () => Promise<T>): Promise<T> {
    const run = this.#editing.then(edit, edit);
    this.#editing = run.catch(() => {});
    return run;
  }

  async #create(input: SilenceInput): Promise<SilenceView> {
    const now = this.#now();
    const silence = newSilence(input, crypto.randomUUID(), now);
    const counts = this.#counts(now);
    const problem = this.#overLimit(
      counts,
      entryOf(silence, compileMatchers(silence.matchers), 0),
      undefined,
    );
    if (problem !== null) throw new SilenceLimitError(`${problem}: expire some first`);
    await this.#write(silence);
    await this.#trimExpired(silence.id);
    return this.get(silence.id)!;
  }

  async #extend(id: string, endsAt: string): Promise<SilenceView | null> {
    const e = this.#byId.get(id);
    if (e === undefined) return null;
    const now = this.#now();
    if (statusOf(e, now) === "expired") {
      throw new SilenceFieldError("id", `Silence "${id}" has expired: create a new one`);
    }
    const end = Date.parse(endsAt);
    if (end <= now) throw new SilenceFieldError("ends_at", `"${endsAt}" is not in the future`);
    if (end <= e.start) {
      throw new SilenceFieldError("ends_at", `"${endsAt}" is not after starts_at`);
    }
    await this.#write({ ...e.silence, ends_at: new Date(end).toISOString(), updated_at: this.#stamp(e) });
    return this.get(id);
  }

  async #expire(id: string): Promise<SilenceView | null> {
    const e = this.#byId.get(id);
    if (e === undefined) return null;
    const now = this.#now();
    if (statusOf(e, now) === "expired") return this.get(id);
    const at = new Date(now).toISOString();
    const startsAt = e.start > now ? at : e.silence.starts_at;
    await this.#write({ ...e.silence, starts_at: startsAt, ends_at: at, updated_at: this.#stamp(e) });
    // The one just expired is answered with, and stays listed.
    await this.#trimExpired(id);
    return this.get(id);
  }

  /** Forgets silences that ended more than `SILENCE_RETENTION_MS` ago (a tombstone on the topic). */
  gc(): Promise<string[]> {
    return this.#serial(() => this.#gc());
  }

  /**
   * Forgets the expired silences beyond `maxSilences`, oldest end first, never `keep` (the one just
   * written, which is answered with): they are kept 120 h, and creating and expiring in a loop would
   * otherwise grow the map and every listing without bound.
   */
  async #trimExpired(keep: string): Promise<void> {
    const max = this.#opts.maxSilences ?? MAX_SILENCES;
    const now = this.#now();
    const expired = [...this.#byId.values()].filter((e) => statusOf(e, now) === "expired");
    // A stable sort of the map's order (oldest first): equal ends keep it.
    const others = expired.filter((e) => e.silence.id !== keep).sort((a, b) => a.end - b.end);
    for (const { silence } of others.slice(0, Math.max(0, expired.length - max))) {
      await this.#opts.log.write(silence.id, null);
      this.#receive(silence.id, null);
    }
  }

  async #gc(): Promise<string[]> {
    const before = this.#now() - SILENCE_RETENTION_MS;
    const old = [...this.#byId.values()].filter((e) => e.end < before);
    for (const { silence } of old) {
      await this.#opts.log.write(silence.id, null);
      this.#receive(silence.id, null);
    }
    return old.map((e) => e.silence.id);
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    clearInterval(this.#gcTimer);
    await this.#opts.log.close();
  }

  /** A version newer than the stored one even when the clock did not move (two edits in one ms). */
  #stamp(e: Entry): string {
    return new Date(Math.max(this.#now(), Date.parse(e.silence.updated_at) + 1)).toISOString();
  }

  async #write(silence: Silence): Promise<void> {
    await this.#opts.log.write(silence.id, silence);
    // Seen here at once; the log's copy of the same version arrives later and changes nothing. Not
    // checked against the limits: `#create` did, and an edit or expiry adds nothing.
    this.#receive(silence.id, silence, true);
  }

  /** Silences pending or in force at `now`, and their distinct patterns (with how many hold each). */
  #counts(now: number): { live: number; regexes: Map<string, number> } {
    let live = 0;
    const regexes = new Map<string, number>();
    for (const e of this.#byId.values()) {
      if (e.end <= now) continue;
      live++;
      for (const k of e.regexes) regexes.set(k, (regexes.get(k) ?? 0) + 1);
    }
    return { live, regexes };
  }

  /**
   * Why keeping `e` (in place of `known`, the version kept now) passes a limit, or null: a silence
   * pending or in force beyond `maxSilences`, or patterns beyond `maxPatterns`. An expired one costs no
   * matching: its bound is the expired ones kept (`maxSilences`, as `#trimExpired` keeps).
   */
  #overLimit(
    counts: { live: number; regexes: Map<string, number> },
    e: Entry,
    known: Entry | undefined,
    now = this.#now(),
  ): string | null {
    const max = this.#opts.maxSilences ?? MAX_SILENCES;
    const knownLive = known !== undefined && known.end > now;
    if (e.end <= now) {
      const expired = this.#byId.size - counts.live;
      return known === undefined && expired >= max
        ? `Already ${expired} expired silences kept (at most ${max})`
        : null;
    }
    if (!knownLive && counts.live >= max) {
      return `Already ${counts.live} silences pending or in force (at most ${max})`;
    }
    const maxPatterns = this.#opts.maxPatterns ?? MAX_SILENCE_PATTERNS;
    let regexes = counts.regexes.size;
    for (const k of e.regexes) if (!counts.regexes.has(k)) regexes++;
    // Patterns only the version it replaces holds go with it.
    if (knownLive) {
      for (const k of known.regexes) if (counts.regexes.get(k) === 1 && !e.regexes.includes(k)) regexes--;
    }
    if (regexes > maxPatterns && e.regexes.some((k) => !counts.regexes.has(k))) {
      return `The silences would hold ${regexes} distinct regex or wildcard matchers (at most ${maxPatterns})`;
    }
    return null;
  }

  /** The batch records are applied to now: one starts at the first record after a flush. */
  #current(): Batch {
    if (this.#batch !== null) return this.#batch;
    const now = this.#now();
    let done!: () => void;
    const settled = new Promise<void>((resolve) => done = resolve);
    this.#batch = { now, ...this.#counts(now), refused: [], done, settled };
    // Every record of a batch is applied in one synchronous run (the topic's follower hands a fetched
    // batch over so; the file, all of it): announced once after it. Announcing each record re-armed
    // the timer over every silence and had the gate test every held alert against every silence:
    // 100 silences with 200 held alerts took 35 s to apply (scripts/bench/silences_cost.ts).
    queueMicrotask(() => this.#flush());
    return this.#batch;
  }

  #flush(): void {
    const batch = this.#batch;
    if (batch === null) return;
    this.#batch = null;
    if (batch.refused.length > 0) {
      this.#opts.logger.warn(
        "Refusing silence records beyond the limit of silences (as the API refuses them)",
        {
          refused: batch.refused.length,
          silences: batch.refused.slice(0, REFUSED_NAMED).join(","),
          max_silences: this.#opts.maxSilences ?? MAX_SILENCES,
          max_patterns: this.#opts.maxPatterns ?? MAX_SILENCE_PATTERNS,
        },
      );
    }
    this.#changed();
    batch.done();
  }

  #keep(e: Entry, known: Entry | undefined, batch: Batch): void {
    this.#version++;
    if (known !== undefined) this.#drop(known, batch);
    this.#byId.set(e.silence.id, e);
    if (e.indexKey === null) this.#unindexed.add(e);
    else {
      let set = this.#index.get(e.indexKey);
      if (set === undefined) this.#index.set(e.indexKey, set = new Set());
      set.add(e);
    }
    if (e.end > batch.now) {
      batch.live++;
      for (const k of e.regexes) batch.regexes.set(k, (batch.regexes.get(k) ?? 0) + 1);
    }
  }

  #drop(e: Entry, batch: Batch): void {
    this.#version++;
    this.#byId.delete(e.silence.id);
    if (e.indexKey === null) this.#unindexed.delete(e);
    else {
      const set = this.#index.get(e.indexKey);
      set?.delete(e);
      if (set?.size === 0) this.#index.delete(e.indexKey);
    }
    if (e.end > batch.now) {
      batch.live--;
      for (const k of e.regexes) {
        const n = (batch.regexes.get(k) ?? 1) - 1;
        if (n === 0) batch.regexes.delete(k);
        else batch.regexes.set(k, n);
      }
    }
  }

  /**
   * Applies a record from the log; one that is not a silence is logged and skipped, and one beyond
   * the limits (not `trusted`: this instance's own write, checked by `#create`) is refused.
   */
  #receive(id: string, value: unknown, trusted = false): void {
    if (value === null) {
      const known = this.#byId.get(id);
      if (known !== undefined) this.#drop(known, this.#current());
      return;
    }
    const parsed = Silence.safeParse(value);
    let matchers: Matcher[];
    try {
      if (!parsed.success) throw new TypeError(parsed.error.issues.map((i) => i.message).join("; "));
      // Edits and tombstones go to the key of the silence's id: another id under this key would
      // stay here for good and could be changed through this key.
      if (parsed.data.id !== id) throw new TypeError(`Its id "${parsed.data.id}" is not its key "${id}"`);
      matchers = compileMatchers(parsed.data.matchers);
    } catch (error) {
      this.#opts.logger.warn("Skipping a silence record that is not valid", { silence: id, error });
      return;
    }
    const silence = parsed.data;
    const known = this.#byId.get(id);
    if (known !== undefined && known.silence.updated_at >= silence.updated_at) return;
    const batch = this.#current();
    const e = entryOf(silence, matchers, known?.seq ?? this.#seq++);
    if (!trusted && this.#overLimit(batch, e, known, batch.now) !== null) {
      this.refused++;
      batch.refused.push(id);
      return;
    }
    this.#keep(e, known, batch);
  }

  #changed(): void {
    this.#version++;
    this.#arm();
    for (const l of this.#listeners) l();
  }

  /** Wakes the listeners at the next start or end: once per batch, over times parsed when read. */
  #arm(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#closed) return;
    const now = this.#now();
    let next = Infinity;
    for (const { start, end } of this.#byId.values()) {
      if (start > now && start < next) next = start;
      if (end > now && end < next) next = end;
    }
    this.#next = next;
    if (next === Infinity) return;
    this.#timer = setTimeout(() => this.#changed(), Math.min(MAX_DELAY, next - now + 1));
  }
}
