import { sha256Hex } from "../hash.ts";
import type { CompiledRule } from "./compile.ts";
import type { CompiledInhibition } from "./inhibit.ts";
import {
  type FileStamp,
  listRuleFiles,
  parseRuleFileAsync,
  readRuleFileBytes,
  type RuleFileResult,
  type RuleProblem,
  sameStamp,
  statRuleFile,
} from "./load.ts";
import { type DeclaredLimits, Limits, TopicLimits, type TopicRecord } from "./limits.ts";
import { RuleSet } from "./ruleset.ts";

export interface RuleFileStatus {
  file: string;
  /** Rules in effect from this file (its last good version when the newest one is refused). */
  rules: number;
  /** True when the file on disk is what is in effect. */
  current: boolean;
  problems: RuleProblem[];
  loaded_at: string | null;
}

export interface ReloadResult {
  ruleSet: RuleSet;
  /** Every problem now: each file's, and the directory's. */
  problems: RuleProblem[];
  changed: boolean;
  /** Files parsed by this reload: the others were unchanged (same stat, or same content). */
  parsed: string[];
  /** Files deleted since the last reload: their rules are gone. */
  removed: string[];
}

interface FileState {
  stamp: FileStamp | null;
  /** The stamp may be trusted to skip reading: false while the mtime is too recent to tell two writes apart. */
  trusted: boolean;
  hash: string | null;
  /** Why the file could not be read (missing symlink target, over the size limit), else null. */
  readProblem: RuleProblem | null;
  /** The parse of the content with `hash`. */
  parsed: RuleFileResult | null;
  inForce: {
    rules: CompiledRule[];
    inhibitions: CompiledInhibition[];
    limits: DeclaredLimits[];
    hash: string;
    loadedAt: Date;
  } | null;
  problems: RuleProblem[];
}

/**
 * Below this age an mtime may be shared by a later write of the same size (mtimes here have
 * millisecond resolution): such a file is read and hashed again on the next reload, not trusted.
 */
const RACY_MTIME_MS = 2_000;

/**
 * The rules directory as the service sees it. The last good rules stay in force whatever happens on
 * disk, and every refusal is a located problem (for the API, the metrics and the log):
 * - a file that does not validate, cannot be read or is too large keeps its last good version;
 * - a file that validates but has no rules left, while its last good version had some, keeps that
 *   version (an operator emptying a file by mistake must not lose rules silently): deleting the file
 *   is how to remove its rules;
 * - a rule id is unique across files: the file whose rule is in force keeps it, and a version of
 *   another file that reuses the id is refused as a whole (that file keeps its last good version).
 *   With nothing in force yet (start-up) the first file by name keeps the id, like `rules:check`.
 *
 * Each reload re-reads only files whose stat changed and re-parses only those whose content changed.
 */
export class RuleRegistry {
  readonly dir: string;
  readonly #files = new Map<string, FileState>();
  #dirProblem: RuleProblem | null = null;
  /** Problems across files: a limits table named twice, a rule naming a table that does not exist. */
  #crossProblems: RuleProblem[] = [];
  /** The files and rules of the last reload, for the rule set rebuilt when the limits topic is first given. */
  #inForce: { files: readonly string[]; rules: readonly CompiledRule[] } = { files: [], rules: [] };
  /** The limits topic's bands (LIMITS_TOPIC), or null without one. */
  #topic: { limits: TopicLimits; report: (sensorId: string, message: string) => void } | null = null;
  /** The tables' names the topic's entries were last checked against (`\u0000`-joined). */
  #topicCheckedFor: string | null = null;
  /** The limits tables' names in force. */
  #tableNames: ReadonlySet<string> = new Set();
  #ruleSet = new RuleSet([]);
  #queue: Promise<unknown> = Promise.resolve();
  lastGoodReload: Date | null = null;
  reloadErrors = 0;
  /** Rule files parsed since start: the cache keeps this from growing with unchanged files. */
  parses = 0;

  constructor(dir: string) {
    this.dir = dir;
  }

  get ruleSet(): RuleSet {
    return this.#ruleSet;
  }

  /** Re-reads the rule files that changed and swaps in a new RuleSet; one reload at a time. */
  reload(): Promise<ReloadResult> {
    const run = this.#queue.then(() => this.#reload());
    this.#queue = run.catch(() => {});
    return run;
  }

  async #reload(): Promise<ReloadResult> {
    let files: string[];
    try {
      files = await listRuleFiles(this.dir);
      this.#dirProblem = null;
    } catch (err) {
      // Mid-swap or deleted: keep every rule in force until the directory is back.
      this.#dirProblem = {
        file: this.dir,
        line: 1,
        column: 1,
        rule_id: null,
        message: `Cannot read the rules directory: ${(err as Error).message}`,
      };
      this.reloadErrors++;
      return { ruleSet: this.#ruleSet, problems: this.problems(), changed: false, parsed: [], removed: [] };
    }
    const present = new Set(files);
    const removed = [...this.#files.keys()].filter((f) => !present.has(f));
    for (const f of removed) this.#files.delete(f);

    const parsed: string[] = [];
    for (const f of files) {
      let state = this.#files.get(f);
      if (state === undefined) {
        state = {
          stamp: null,
          trusted: false,
          hash: null,
          readProblem: null,
          parsed: null,
          inForce: null,
          problems: [],
        };
        this.#files.set(f, state);
      }
      if (await this.#refresh(f, state)) parsed.push(f);
    }
    this.#resolve(files);

    const ids = new Set<string>();
    const rules = files.flatMap((f) => this.#files.get(f)!.inForce?.rules ?? []).filter((r) =>
      // #resolve leaves no id twice; this keeps a RuleSet's ids unique even if it did.
      !ids.has(r.rule.id) && ids.add(r.rule.id)
    );
    const before = this.#ruleSet.rules.map((r) => r.hash).join("\n");
    this.#inForce = { files, rules };
    this.#ruleSet = new RuleSet(rules, this.#inhibitions(files), this.#limits(files, rules));
    const problems = this.problems();
    if (problems.length > 0) this.reloadErrors++;
    else this.lastGoodReload = new Date();
    return {
      ruleSet: this.#ruleSet,
      problems,
      changed: before !== this.#ruleSet.rules.map((r) => r.hash).join("\n"),
      parsed,
      removed,
    };
  }

  /**
   * The limits tables in force, the first file by name keeping a name declared twice, and the
   * problems across files: such a second table, a rule naming a table that does not exist, a
   * `hysteresis` that leaves one of its table's bands no value to come back to.
   */
  #limits(files: readonly string[], rules: readonly CompiledRule[]): Limits {
    this.#crossProblems = [];
    const declared: DeclaredLimits[] = [];
    const first = new Map<string, DeclaredLimits>();
    for (const f of files) {
      for (const d of this.#files.get(f)!.inForce?.limits ?? []) {
        const seen = first.get(d.name);
        if (seen === undefined) {
          first.set(d.name, d);
          declared.push(d);
        } else {
          this.#crossProblems.push({
            ...d.source,
            rule_id: null,
            message:
              `Limits table "${d.name}" is already defined at ${seen.source.file}:${seen.source.line}: ` +
              "this one is ignored",
          });
        }
      }
    }
    this.#tableNames = new Set(declared.map((d) => d.name));
    const limits = new Limits(declared, this.#topic?.limits ?? null);
    this.#checkTopicTables();
    for (const r of rules) {
      const name = r.limitsName;
      if (name === null) continue;
      if (!limits.has(name)) {
        const names = limits.names();
        this.#crossProblems.push({
          ...r.source,
          rule_id: r.rule.id,
          message: `No limits table named "${name}" (${
            names.length > 0 ? `tables: ${names.join(", ")}` : "none defined"
          })`,
        });
        continue;
      }
      const h = r.rule.hysteresis ?? 0;
      for (const e of limits.entries(name)) {
        if (h > 0 && e.min !== null && e.max !== null && e.min + h > e.max - h) {
          this.#crossProblems.push({
            ...r.source,
            rule_id: r.rule.id,
            message: `Field "hysteresis": ${h} leaves no value inside ${e.min}..${e.max} of ${e.source} to ` +
              "come back to: the alert would never resolve",
          });
        }
      }
    }
    return limits;
  }

  /** The inhibit rules of the files' versions in force. */
  #inhibitions(files: readonly string[]): CompiledInhibition[] {
    return files.flatMap((f) => this.#files.get(f)!.inForce?.inhibitions ?? []);
  }

  /**
   * Records of the limits topic, as read: each is parsed once and changes its sensor's bands in place.
   * The rule set stays the same object, so no engine swaps rules (which is O(sensors + episodes) and
   * drops each sensor's cached rules): a sensor's cached band is checked against its topic entry on
   * its next event (see `Limits.topicVersion`). Each problem is reported once, with the record's key.
   */
  applyTopicRecords(
    name: string,
    records: Iterable<TopicRecord>,
    report: (sensorId: string, message: string) => void,
  ): TopicLimits {
    if (this.#topic === null) {
      this.#topic = { limits: new TopicLimits(name), report };
      // The rule set in force has no topic: one rebuild, with the same rules, to give it one.
      const { files, rules } = this.#inForce;
      this.#ruleSet = new RuleSet(rules, this.#inhibitions(files), this.#limits(files, rules));
    }
    const { limits } = this.#topic;
    const names = this.#tableNames;
    for (const r of records) limits.apply(r, (t) => names.has(t), (message) => report(r.key, message));
    return limits;
  }

  /** After a reload that changed the tables' names: the topic's bands for tables still undeclared. */
  #checkTopicTables(): void {
    const topic = this.#topic;
    if (topic === null) return;
    const key = [...this.#tableNames].sort().join("\u0000");
    if (key === this.#topicCheckedFor) return;
    this.#topicCheckedFor = key;
    const names = this.#tableNames;
    topic.limits.reportUndeclared((t) => names.has(t), topic.report);
  }

  /** Brings `state` up to date with the file on disk; true when the file was parsed. */
  async #refresh(file: string, state: FileState): Promise<boolean> {
    const checkedAt = Date.now();
    let stamp: FileStamp;
    try {
      stamp = await statRuleFile(file);
    } catch (err) {
      // A dangling symlink, or a file deleted since the listing: reported, its rules stay.
      state.stamp = null;
      state.readProblem = {
        file,
        line: 1,
        column: 1,
        rule_id: null,
        message: `Cannot read file: ${(err as Error).message}`,
      };
      return false;
    }
    if (state.trusted && sameStamp(stamp, state.stamp)) return false;
    state.stamp = stamp;
    state.trusted = checkedAt - stamp.mtimeMs > RACY_MTIME_MS;
    const read = await readRuleFileBytes(file);
    if (read.problem !== null) {
      state.readProblem = read.problem;
      state.hash = null;
      return false;
    }
    state.readProblem = null;
    const hash = sha256Hex(read.bytes);
    if (hash === state.hash && state.parsed !== null) return false;
    state.hash = hash;
    const text = new TextDecoder().decode(read.bytes);
    state.parsed = await parseRuleFileAsync(file, text).catch((err: Error) => ({
      // A bug in a compiler step, not the file's fault: still the file's problem, not the reload's end.
      file,
      rules: [],
      inhibitions: [],
      problems: [{ file, line: 1, column: 1, rule_id: null, message: `Cannot load file: ${err.message}` }],
    }));
    this.parses++;
    return true;
  }

  /** Decides which version of each file is in force, and each file's problems. */
  #resolve(files: readonly string[]): void {
    const previousOwner = new Map<string, string>();
    for (const f of files) {
      for (const r of this.#files.get(f)!.inForce?.rules ?? []) previousOwner.set(r.rule.id, f);
    }
    // The version on disk of each file that may replace its version in force.
    const fresh = new Map<string, CompiledRule[]>();
    const freshInhibitions = new Map<string, CompiledInhibition[]>();
    for (const f of files) {
      const s = this.#files.get(f)!;
      s.problems = [];
      if (s.readProblem !== null) s.problems.push(s.readProblem);
      else if (s.parsed === null) continue;
      else if (s.parsed.problems.length > 0) s.problems.push(...s.parsed.problems);
      else if (s.parsed.rules.length === 0 && (s.inForce?.rules.length ?? 0) > 0) {
        const n = s.inForce!.rules.length;
        s.problems.push({
          file: f,
          line: 1,
          column: 1,
          rule_id: null,
          message:
            `File has no rules: its last good version (${n} rule${n === 1 ? "" : "s"}) stays in force; ` +
            "delete the file to remove them",
        });
      } else if (s.inForce?.hash !== s.hash) {
        fresh.set(f, s.parsed.rules);
        freshInhibitions.set(f, s.parsed.inhibitions);
      }
    }
    const limitsOf = (f: string) => this.#files.get(f)!.parsed?.limits ?? [];

    // Versions in force own their ids and never conflict with each other, so a conflict always
    // involves a fresh version. Each round refuses the fresh versions that lose an id to a winner that
    // cannot itself be refused any more; at least one goes per round, so this ends.
    const versionOf = (f: string) => fresh.get(f) ?? this.#files.get(f)!.inForce?.rules ?? [];
    for (let round = 0; round <= files.length; round++) {
      const claims = new Map<string, { file: string; rule: CompiledRule }[]>();
      for (const f of files) {
        for (const rule of versionOf(f)) {
          const list = claims.get(rule.rule.id);
          if (list === undefined) claims.set(rule.rule.id, [{ file: f, rule }]);
          else list.push({ file: f, rule });
        }
      }
      const contests: {
        winner: { file: string; rule: CompiledRule };
        loser: { file: string; rule: CompiledRule };
      }[] = [];
      for (const [id, list] of claims) {
        if (list.length < 2) continue;
        const winner = list.find((c) => c.file === previousOwner.get(id)) ?? list[0]!;
        for (const loser of list) if (loser !== winner) contests.push({ winner, loser });
      }
      if (contests.length === 0) break;
      const losers = new Set(contests.map((c) => c.loser.file));
      const settled = (c: (typeof contests)[number]) =>
        !fresh.has(c.winner.file) || previousOwner.get(c.winner.rule.rule.id) === c.winner.file ||
        !losers.has(c.winner.file);
      // Every id a refused version loses is reported, so one fix does not reveal the next.
      const decided = contests.filter((c) => fresh.has(c.loser.file) && settled(c));
      if (decided.length === 0) break;
      for (const c of decided) fresh.delete(c.loser.file);
      for (const c of decided) {
        const s = this.#files.get(c.loser.file)!;
        const at = c.winner.rule.source;
        s.problems.push({
          ...c.loser.rule.source,
          rule_id: c.loser.rule.rule.id,
          message: `Duplicate rule id, already defined at ${at.file}:${at.line}: ` +
            (s.inForce === null
              ? "no rule of this file is in force"
              : "this file's last good version stays in force"),
        });
      }
    }
    const now = new Date();
    for (const [f, rules] of fresh) {
      const s = this.#files.get(f)!;
      s.inForce = {
        rules,
        inhibitions: freshInhibitions.get(f) ?? [],
        limits: limitsOf(f),
        hash: s.hash!,
        loadedAt: now,
      };
    }
  }

  /** Why the directory itself could not be read at the last reload, else null. */
  get directoryProblem(): RuleProblem | null {
    return this.#dirProblem;
  }

  /** Every problem now: the directory's, then each file's in name order. */
  problems(): RuleProblem[] {
    const byFile = (a: RuleProblem, b: RuleProblem) => a.file < b.file ? -1 : a.file > b.file ? 1 : 0;
    return [
      ...(this.#dirProblem === null ? [] : [this.#dirProblem]),
      // Stable: each file's own problems in their order, then those across files it is part of.
      ...[...this.#sorted().flatMap(([, s]) => s.problems), ...this.#crossProblems].sort(byFile),
    ];
  }

  #sorted(): [string, FileState][] {
    return [...this.#files.entries()].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0);
  }

  status(): RuleFileStatus[] {
    return this.#sorted().map(([file, s]) => ({
      file,
      rules: s.inForce?.rules.length ?? 0,
      current: s.problems.length === 0,
      problems: s.problems,
      loaded_at: s.inForce?.loadedAt.toISOString() ?? null,
    }));
  }
}
