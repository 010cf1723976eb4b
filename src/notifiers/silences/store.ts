/**
 * The silences every instance shares: a map of id → newest version, fed by a `SilenceLog` (the
 * compacted silences topic, or a local file) and written through it. Listeners hear of every change,
 * and of every start and end as its time comes, so held notifications are looked at again then.
 *
 * @module
 */
import type { SensorAlert } from "../../contract/schemas.ts";
import type { Logger } from "../../log.ts";
import type { Matcher } from "../../contract/matcher.ts";
import { matchesAll } from "../../contract/matcher.ts";
import {
  compileMatchers,
  newSilence,
  Silence,
  SilenceFieldError,
  type SilenceInput,
  type SilenceStatus,
  silenceStatus,
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
}

/**
 * Every alert is matched against every silence in force: a bound keeps that cost bounded whoever holds
 * the token (32 matchers of 256 characters each, at most).
 */
export const MAX_SILENCES = 1000;

/** A new silence beyond `maxSilences`: the caller expires some first. */
export class SilenceLimitError extends RangeError {
  override name = "SilenceLimitError";
}

interface Entry {
  silence: Silence;
  matchers: Matcher[];
}

/** setTimeout's longest delay (~24.8 days); a later boundary re-arms from there. */
const MAX_DELAY = 2 ** 31 - 1;

export class Silences {
  readonly #opts: SilencesOptions;
  readonly #now: () => number;
  readonly #byId = new Map<string, Entry>();
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

  /** Called on every change and at every start and end of a silence. */
  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Every silence not yet forgotten, newest end first. */
  list(): SilenceView[] {
    const now = this.#now();
    return [...this.#byId.values()]
      .map(({ silence }) => ({ ...silence, status: silenceStatus(silence, now) }))
      .sort((a, b) => b.ends_at.localeCompare(a.ends_at));
  }

  get(id: string): SilenceView | null {
    const e = this.#byId.get(id);
    return e === undefined ? null : { ...e.silence, status: silenceStatus(e.silence, this.#now()) };
  }

  /** Silences in force now. */
  get active(): number {
    const now = this.#now();
    let n = 0;
    for (const { silence } of this.#byId.values()) if (silenceStatus(silence, now) === "active") n++;
    return n;
  }

  /** Ids of the silences in force now that match `alert` (empty: not silenced). */
  silencing(alert: SensorAlert): string[] {
    if (this.#byId.size === 0) return [];
    const now = this.#now();
    const ids: string[] = [];
    for (const { silence, matchers } of this.#byId.values()) {
      if (silenceStatus(silence, now) === "active" && matchesAll(matchers, alert)) ids.push(silence.id);
    }
    return ids;
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
    const max = this.#opts.maxSilences ?? MAX_SILENCES;
    let live = 0;
    for (const { silence } of this.#byId.values()) if (silenceStatus(silence, now) !== "expired") live++;
    if (live >= max) {
      throw new SilenceLimitError(
        `Already ${live} silences pending or in force (at most ${max}): expire some first`,
      );
    }
    const silence = newSilence(input, crypto.randomUUID(), now);
    await this.#write(silence);
    await this.#trimExpired(silence.id);
    return this.get(silence.id)!;
  }

  async #extend(id: string, endsAt: string): Promise<SilenceView | null> {
    const e = this.#byId.get(id);
    if (e === undefined) return null;
    const now = this.#now();
    if (silenceStatus(e.silence, now) === "expired") {
      throw new SilenceFieldError("id", `Silence "${id}" has expired: create a new one`);
    }
    const end = Date.parse(endsAt);
    if (end <= now) throw new SilenceFieldError("ends_at", `"${endsAt}" is not in the future`);
    if (end <= Date.parse(e.silence.starts_at)) {
      throw new SilenceFieldError("ends_at", `"${endsAt}" is not after starts_at`);
    }
    await this.#write({ ...e.silence, ends_at: new Date(end).toISOString(), updated_at: this.#stamp(e) });
    return this.get(id);
  }

  async #expire(id: string): Promise<SilenceView | null> {
    const e = this.#byId.get(id);
    if (e === undefined) return null;
    const now = this.#now();
    if (silenceStatus(e.silence, now) === "expired") return this.get(id);
    const at = new Date(now).toISOString();
    const startsAt = Date.parse(e.silence.starts_at) > now ? at : e.silence.starts_at;
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
    const expired = [...this.#byId.values()].filter((e) => silenceStatus(e.silence, now) === "expired");
    // A stable sort of the map's order (oldest first): equal ends keep it.
    const others = expired.filter((e) => e.silence.id !== keep)
      .sort((a, b) => Date.parse(a.silence.ends_at) - Date.parse(b.silence.ends_at));
    for (const { silence } of others.slice(0, Math.max(0, expired.length - max))) {
      await this.#opts.log.write(silence.id, null);
      this.#receive(silence.id, null);
    }
  }

  async #gc(): Promise<string[]> {
    const before = this.#now() - SILENCE_RETENTION_MS;
    const old = [...this.#byId.values()].filter((e) => Date.parse(e.silence.ends_at) < before);
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
    // Seen here at once; the log's copy of the same version arrives later and changes nothing.
    this.#receive(silence.id, silence);
  }

  /** Applies a record from the log; one that is not a silence is logged and skipped. */
  #receive(id: string, value: unknown): void {
    if (value === null) {
      if (this.#byId.delete(id)) this.#changed();
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
    this.#byId.set(id, { silence, matchers });
    this.#changed();
  }

  #changed(): void {
    this.#arm();
    for (const l of this.#listeners) l();
  }

  /** Wakes the listeners at the next start or end. */
  #arm(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#closed) return;
    const now = this.#now();
    let next = Infinity;
    for (const { silence } of this.#byId.values()) {
      for (const t of [Date.parse(silence.starts_at), Date.parse(silence.ends_at)]) {
        if (t > now && t < next) next = t;
      }
    }
    if (next === Infinity) return;
    this.#timer = setTimeout(() => this.#changed(), Math.min(MAX_DELAY, next - now + 1));
  }
}
