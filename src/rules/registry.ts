import type { CompiledRule } from "./compile.ts";
import { listRuleFiles, loadRuleFile, type RuleFileResult, type RuleProblem } from "./load.ts";
import { RuleSet } from "./ruleset.ts";

export interface RuleFileStatus {
  file: string;
  /** Rules in effect from this file (its last good version when the newest one is invalid). */
  rules: number;
  /** True when the file on disk is what is in effect. */
  current: boolean;
  problems: RuleProblem[];
  loaded_at: string | null;
}

export interface ReloadResult {
  ruleSet: RuleSet;
  problems: RuleProblem[];
  changed: boolean;
}

/**
 * The rules directory as the service sees it. Each file is validated on its own; an invalid file
 * keeps its last good version in effect, and its problems are kept for the API and logs.
 */
export class RuleRegistry {
  readonly dir: string;
  readonly #good = new Map<string, { rules: CompiledRule[]; loadedAt: Date }>();
  readonly #latest = new Map<string, RuleFileResult>();
  #ruleSet = new RuleSet([]);
  lastGoodReload: Date | null = null;
  reloadErrors = 0;

  constructor(dir: string) {
    this.dir = dir;
  }

  get ruleSet(): RuleSet {
    return this.#ruleSet;
  }

  /** Re-reads every rule file (or just `paths`), and swaps in a new RuleSet. */
  async reload(paths?: Iterable<string>): Promise<ReloadResult> {
    const files = await listRuleFiles(this.dir);
    const present = new Set(files);
    for (const f of [...this.#good.keys(), ...this.#latest.keys()]) {
      if (!present.has(f)) {
        this.#good.delete(f);
        this.#latest.delete(f);
      }
    }
    const wanted = paths === undefined
      ? files
      : [...new Set([...paths, ...files.filter((f) => !this.#latest.has(f))])].filter((p) => present.has(p));
    for (const f of wanted) {
      const result = await loadRuleFile(f);
      this.#latest.set(f, result);
      if (result.problems.length === 0) this.#good.set(f, { rules: result.rules, loadedAt: new Date() });
    }

    const problems: RuleProblem[] = [...this.#latest.values()].flatMap((r) => r.problems);
    // Ids are unique across files: the first file (by name) keeps a duplicated id.
    const seen = new Map<string, CompiledRule>();
    const rules: CompiledRule[] = [];
    for (const f of files) {
      for (const r of this.#good.get(f)?.rules ?? []) {
        const first = seen.get(r.rule.id);
        if (first !== undefined) {
          problems.push({
            file: r.source.file,
            line: r.source.line,
            column: r.source.column,
            rule_id: r.rule.id,
            message: `Duplicate rule id, already defined at ${first.source.file}:${first.source.line}`,
          });
          continue;
        }
        seen.set(r.rule.id, r);
        rules.push(r);
      }
    }
    const before = this.#ruleSet.rules.map((r) => r.hash).join("\n");
    this.#ruleSet = new RuleSet(rules);
    if (problems.length > 0) this.reloadErrors++;
    else this.lastGoodReload = new Date();
    return {
      ruleSet: this.#ruleSet,
      problems,
      changed: before !== this.#ruleSet.rules.map((r) => r.hash).join("\n"),
    };
  }

  status(): RuleFileStatus[] {
    return [...this.#latest.values()].map((r) => ({
      file: r.file,
      rules: this.#good.get(r.file)?.rules.length ?? 0,
      current: r.problems.length === 0,
      problems: r.problems,
      loaded_at: this.#good.get(r.file)?.loadedAt.toISOString() ?? null,
    }));
  }
}
