import { type CompiledRule, compileRule, RuleCompileError } from "./compile.ts";
import { Rule, RuleFile } from "./schema.ts";
import { issueProblem, parseYaml } from "../yaml.ts";

/** One problem in a rule file, located for `file:line:col rule-id: message`. */
export interface RuleProblem {
  file: string;
  line: number;
  column: number;
  rule_id: string | null;
  message: string;
}

export function formatProblem(p: RuleProblem): string {
  return `${p.file}:${p.line}:${p.column} ${p.rule_id ?? "-"}: ${p.message}`;
}

export interface RuleFileResult {
  file: string;
  rules: CompiledRule[];
  problems: RuleProblem[];
}

/** Parses, validates and compiles one rule file's text. Never throws for bad content. */
export function parseRuleFile(file: string, text: string): RuleFileResult {
  const doc = parseYaml(file, text);
  if (doc.problems.length > 0) {
    return { file, rules: [], problems: doc.problems.map((p) => ({ ...p, rule_id: null })) };
  }
  const locate = doc.locate;
  const raw = doc.value ?? {};
  const top = RuleFile.safeParse(raw);
  if (!top.success) {
    // Only the file's own shape here; each rule is validated on its own below so one bad rule
    // does not hide the problems of the others.
    const fileIssues = top.error.issues.filter((i) =>
      !(i.path[0] === "rules" && typeof i.path[1] === "number")
    );
    if (fileIssues.length > 0) {
      return {
        file,
        rules: [],
        problems: fileIssues.map((issue) => ({ ...issueProblem(file, doc, [], issue), rule_id: null })),
      };
    }
  }
  const list = (raw as { rules?: unknown }).rules;
  const rules: CompiledRule[] = [];
  const problems: RuleProblem[] = [];
  const seen = new Set<string>();
  (Array.isArray(list) ? list : []).forEach((item: unknown, i) => {
    const base = ["rules", i];
    const id = typeof (item as { id?: unknown })?.id === "string" ? (item as { id: string }).id : null;
    const parsed = Rule.safeParse(item);
    if (!parsed.success) {
      problems.push(
        ...parsed.error.issues.map((issue) => ({
          ...issueProblem(file, doc, base, issue, "Rule"),
          rule_id: id,
        })),
      );
      return;
    }
    const rule = parsed.data;
    if (seen.has(rule.id)) {
      problems.push({
        file,
        ...locate([...base, "id"]),
        rule_id: rule.id,
        message: "Duplicate rule id in this file",
      });
      return;
    }
    seen.add(rule.id);
    try {
      rules.push(compileRule(rule, { file, ...locate(base) }));
    } catch (err) {
      if (!(err instanceof RuleCompileError)) throw err;
      problems.push({
        file,
        ...locate([...base, ...err.path]),
        rule_id: rule.id,
        message: `${err.path.length > 0 ? `At "${err.path.join(".")}": ` : ""}${err.message}`,
      });
    }
  });
  // A file is all or nothing: half a file of rules would be a state nobody wrote.
  return problems.length > 0 ? { file, rules: [], problems } : { file, rules, problems };
}

/** Reads and parses one rule file; an unreadable file is a problem, not an exception. */
export async function loadRuleFile(path: string, displayName = path): Promise<RuleFileResult> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    return {
      file: displayName,
      rules: [],
      problems: [{
        file: displayName,
        line: 1,
        column: 1,
        rule_id: null,
        message: `Cannot read file: ${(err as Error).message}`,
      }],
    };
  }
  return parseRuleFile(displayName, text);
}

/** Files in the rules directory that are not rule files (the notifier configuration). */
export const NON_RULE_FILES: readonly string[] = ["notifiers.yaml", "notifiers.yml"];

/** The `*.yaml` / `*.yml` rule files directly in `dir`, sorted by name. */
export async function listRuleFiles(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (entry.isFile && /\.ya?ml$/.test(entry.name) && !NON_RULE_FILES.includes(entry.name)) {
      names.push(`${dir.replace(/\/+$/, "")}/${entry.name}`);
    }
  }
  return names.sort();
}
