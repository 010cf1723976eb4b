import { isNode, LineCounter, parseDocument } from "yaml";
import type { z } from "zod";
import { type CompiledRule, compileRule, RuleCompileError } from "./compile.ts";
import { Rule, RuleFile } from "./schema.ts";

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
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const at = (offset: number) => {
    const pos = lineCounter.linePos(offset);
    return { line: pos.line, column: pos.col };
  };
  if (doc.errors.length > 0) {
    return {
      file,
      rules: [],
      problems: doc.errors.map((e) => ({
        file,
        ...at(e.pos[0]),
        rule_id: null,
        message: e.message.split("\n")[0]!,
      })),
    };
  }
  const locate = (path: (string | number)[]): { line: number; column: number } => {
    // Walk up to the deepest node that exists, so a missing field points at its rule.
    for (let n = path.length; n >= 0; n--) {
      const node = n === 0 ? doc.contents : doc.getIn(path.slice(0, n), true);
      if (isNode(node) && node.range) return at(node.range[0]);
    }
    return { line: 1, column: 1 };
  };
  const raw = doc.toJS() ?? {};
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
        problems: fileIssues.map((issue) => issueProblem(file, [], issue, locate, null)),
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
      problems.push(...parsed.error.issues.map((issue) => issueProblem(file, base, issue, locate, id)));
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

type Locate = (path: (string | number)[]) => { line: number; column: number };

function issueProblem(
  file: string,
  base: (string | number)[],
  issue: z.core.$ZodIssue,
  locate: Locate,
  ruleId: string | null,
): RuleProblem {
  const path = issue.path.filter((p): p is string | number => typeof p !== "symbol");
  const subject = path.length > 0 ? `Field "${path.join(".")}"` : base.length > 0 ? "Rule" : "File";
  return {
    file,
    ...locate([...base, ...path]),
    rule_id: ruleId,
    message: `${subject}: ${issueMessage(issue)}`,
  };
}

/** A union's "Invalid input" says nothing; the first alternative's own complaint does. */
function issueMessage(issue: z.core.$ZodIssue): string {
  if (issue.code === "invalid_union" && issue.errors.length > 0 && issue.errors[0]!.length > 0) {
    return issueMessage(issue.errors[0]![0]!);
  }
  return issue.message.replace(/^Invalid input: /, "").replace(/^Invalid option: /, "");
}
