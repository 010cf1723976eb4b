import { isNode, LineCounter, parseDocument } from "yaml";
import type { z } from "zod";
import { type CompiledRule, compileRule, RuleCompileError } from "./compile.ts";
import { RuleFile } from "./schema.ts";

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
  const ruleIdAt = (index: unknown): string | null => {
    if (typeof index !== "number") return null;
    const id = (raw as { rules?: { id?: unknown }[] }).rules?.[index]?.id;
    return typeof id === "string" ? id : null;
  };
  const parsed = RuleFile.safeParse(raw);
  if (!parsed.success) {
    return {
      file,
      rules: [],
      problems: parsed.error.issues.map((issue: z.core.$ZodIssue) => {
        const path = issue.path.filter((p): p is string | number => typeof p !== "symbol");
        const field = path.length > 2 ? `"${path.slice(2).join(".")}"` : path.length === 2 ? "Rule" : "File";
        return {
          file,
          ...locate(path),
          rule_id: path[0] === "rules" ? ruleIdAt(path[1]) : null,
          message: `${field.startsWith('"') ? `Field ${field}` : field}: ${issue.message}`,
        };
      }),
    };
  }
  const rules: CompiledRule[] = [];
  const problems: RuleProblem[] = [];
  const seen = new Set<string>();
  parsed.data.rules.forEach((rule, i) => {
    const pos = locate(["rules", i]);
    if (seen.has(rule.id)) {
      problems.push({
        file,
        ...locate(["rules", i, "id"]),
        rule_id: rule.id,
        message: "Duplicate rule id in this file",
      });
      return;
    }
    seen.add(rule.id);
    try {
      rules.push(compileRule(rule, { file, ...pos }));
    } catch (err) {
      if (!(err instanceof RuleCompileError)) throw err;
      problems.push({
        file,
        ...locate(["rules", i, ...err.path]),
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

/** The `*.yaml` / `*.yml` files directly in `dir`, sorted by name. */
export async function listRuleFiles(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (entry.isFile && /\.ya?ml$/.test(entry.name)) names.push(`${dir.replace(/\/+$/, "")}/${entry.name}`);
  }
  return names.sort();
}
