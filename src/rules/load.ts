import { constants as fsConstants } from "node:fs";
import { open } from "node:fs/promises";
import { type CompiledRule, compileRule, RuleCompileError } from "./compile.ts";
import { type CompiledInhibition, compileInhibition } from "./inhibit.ts";
import type { DeclaredLimits } from "./limits.ts";
import { Inhibition, type LimitTable, Rule, RuleFile } from "./schema.ts";
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
  /** The file's inhibit rules (`inhibit:`). */
  inhibitions: CompiledInhibition[];
  problems: RuleProblem[];
  /** The file's limits tables (`limits:`), in file order. */
  limits?: DeclaredLimits[];
}

/** Parses, validates and compiles one rule file's text. Never throws for bad content. */
export function parseRuleFile(file: string, text: string): RuleFileResult {
  const steps = _parseSteps(file, text);
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
  }
}

/**
 * The same as `parseRuleFile`, giving the event loop a turn every few dozen rules so a reload holds
 * up event processing for one YAML parse at most, which `MAX_RULE_FILE_BYTES` bounds. Chosen over a
 * worker: compiled rules hold closures that cannot cross to another thread, so a worker could only
 * take the YAML parse and would have to ship every node's position back for the error messages.
 * Measured on the 2-core CI machine at load 5: reloading a 250 KB file of 850 rules stalled the
 * event loop 267-307 ms at most (the 10 MB file that stalled the service 23 s is now refused on
 * its size, unread). The parse's cost is linear in the file's size (yaml: ~1 ms per KB), and so is
 * the rest since src/yaml.ts indexes the document once: a limits table of 8,000 entries (232 KB)
 * stalled 0.9 s, a flow map of 20,000 keys (200 KB) 3.7 s, both ~0.33 s now
 * (scripts/bench/rule_file_stall.ts).
 */
export async function parseRuleFileAsync(file: string, text: string): Promise<RuleFileResult> {
  const steps = _parseSteps(file, text);
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
}

/** Rules validated and compiled between two turns of the event loop (about 5 ms of work). */
const RULES_PER_STEP = 32;

function* _parseSteps(file: string, text: string): Generator<void, RuleFileResult> {
  const doc = parseYaml(file, text);
  if (doc.problems.length > 0) {
    return {
      file,
      rules: [],
      inhibitions: [],
      problems: doc.problems.map((p) => ({ ...p, rule_id: null })),
    };
  }
  yield;
  const locate = doc.locate;
  const raw = doc.value ?? {};
  const top = RuleFile.safeParse(raw);
  if (!top.success) {
    // Only the file's own shape here; each rule is validated on its own below so one bad rule
    // does not hide the problems of the others.
    const fileIssues = top.error.issues.filter((i) =>
      !((i.path[0] === "rules" || i.path[0] === "inhibit") && typeof i.path[1] === "number")
    );
    if (fileIssues.length > 0) {
      return {
        file,
        rules: [],
        inhibitions: [],
        problems: fileIssues.map((issue) => ({ ...issueProblem(file, doc, [], issue), rule_id: null })),
      };
    }
  }
  const list = (raw as { rules?: unknown }).rules;
  const rules: CompiledRule[] = [];
  const problems: RuleProblem[] = [];
  const seen = new Set<string>();
  const items: unknown[] = Array.isArray(list) ? list : [];
  for (const [i, item] of items.entries()) {
    if (i > 0 && i % RULES_PER_STEP === 0) yield;
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
      continue;
    }
    const rule = parsed.data;
    if (seen.has(rule.id)) {
      problems.push({
        file,
        ...locate([...base, "id"]),
        rule_id: rule.id,
        message: "Duplicate rule id in this file",
      });
      continue;
    }
    seen.add(rule.id);
    try {
      rules.push(compileRule(rule, { file, ...locate(base) }));
    } catch (err) {
      if (!(err instanceof RuleCompileError)) throw err;
      for (const { path, message } of err.problems) {
        problems.push({
          file,
          ...locate([...base, ...path]),
          rule_id: rule.id,
          message: `${path.length > 0 ? `At "${path.join(".")}": ` : ""}${message}`,
        });
      }
    }
  }
  const inhibitions = parseInhibitions(file, doc, raw, rules, problems);
  // A file is all or nothing: half a file of rules would be a state nobody wrote.
  return problems.length > 0
    ? { file, rules: [], inhibitions: [], problems }
    : { file, rules, inhibitions, problems, limits: _declaredLimits(file, raw, doc.locateAtKey) };
}

/** The file's `inhibit:` list, each entry validated on its own, its problems added to `problems`. */
function parseInhibitions(
  file: string,
  doc: ReturnType<typeof parseYaml>,
  raw: unknown,
  rules: readonly CompiledRule[],
  problems: RuleProblem[],
): CompiledInhibition[] {
  const list = (raw as { inhibit?: unknown }).inhibit;
  const out: CompiledInhibition[] = [];
  for (const [i, item] of (Array.isArray(list) ? list : []).entries()) {
    const base = ["inhibit", i];
    const parsed = Inhibition.safeParse(item);
    if (!parsed.success) {
      problems.push(...parsed.error.issues.map((issue) => ({
        ...issueProblem(file, doc, base, issue, "Inhibit rule"),
        rule_id: null,
      })));
      continue;
    }
    // The notifier stage learns that a source stopped firing from its resolved notice.
    const ids = parsed.data.source.rule_id;
    const quiet = (Array.isArray(ids) ? ids : ids === undefined ? [] : [ids]).filter((id) =>
      rules.some((r) => r.rule.id === id && !r.rule.notify_resolved)
    );
    for (const id of quiet) {
      problems.push({
        file,
        ...doc.locate([...base, "source", "rule_id"]),
        rule_id: null,
        message: `Field "source.rule_id": rule "${id}" has notify_resolved: false, so the ` +
          "notifier stage would never learn that it stopped firing and would inhibit for ever",
      });
    }
    if (quiet.length === 0) out.push(compileInhibition(parsed.data, { file, ...doc.locate(base) }));
  }
  return out;
}

/** The file's `limits:` tables, each entry located (the file's shape has been validated). */
function _declaredLimits(
  file: string,
  raw: unknown,
  locate: (path: readonly (string | number)[]) => { line: number; column: number },
): DeclaredLimits[] {
  const tables = RuleFile.shape.limits.parse((raw as { limits?: unknown }).limits) as Record<
    string,
    LimitTable
  >;
  return Object.entries(tables).map(([name, table]) => {
    const entryLines = new Map<string, number>();
    if (table.default !== undefined) {
      entryLines.set("default\u0000", locate(["limits", name, "default"]).line);
    }
    for (const level of ["sensor_id", "location", "sensor_type"] as const) {
      for (const key of Object.keys(table[level] ?? {})) {
        entryLines.set(`${level}\u0000${key}`, locate(["limits", name, level, key]).line);
      }
    }
    return { name, table, source: { file, ...locate(["limits", name]) }, entryLines };
  });
}

/**
 * Rule files larger than this are refused with a problem (their last good version stays in force).
 * The YAML parse of one file cannot be split, so this bounds how long a reload holds up events. A
 * file this size holds about 850 fully described rules; more rules go in more files.
 */
export const MAX_RULE_FILE_BYTES = 256 * 1024;

/** What tells a version of a file from the next without reading it (stat follows symlinks). */
export interface FileStamp {
  mtimeMs: number;
  size: number;
  dev: number;
  ino: number | null;
}

export async function statRuleFile(path: string): Promise<FileStamp> {
  const info = await Deno.stat(path);
  return { mtimeMs: info.mtime?.getTime() ?? 0, size: info.size, dev: info.dev, ino: info.ino };
}

export function sameStamp(a: FileStamp | null, b: FileStamp | null): boolean {
  return a !== null && b !== null && a.mtimeMs === b.mtimeMs && a.size === b.size && a.dev === b.dev &&
    a.ino === b.ino;
}

/** How large a file `readRuleFileBytes` reads, and what its refusal tells the operator to do instead. */
export interface FileLimit {
  bytes: number;
  /** Ends `over the limit of N bytes for …`. */
  what: string;
  advice: string;
}

const RULE_FILE_LIMIT: FileLimit = {
  bytes: MAX_RULE_FILE_BYTES,
  what: "a rule file",
  advice: "split it into several files",
};

/**
 * The bytes of a rule file (or of another file read on reload, with its own `limit`), at most
 * `limit.bytes`, or the problem that kept it from being read. `missing` tells a file that is not
 * there (its caller may have a default for that) from one that cannot be read.
 */
export async function readRuleFileBytes(
  path: string,
  displayName = path,
  limit: FileLimit = RULE_FILE_LIMIT,
): Promise<
  { bytes: Uint8Array; problem: null } | { bytes: null; problem: RuleProblem; missing: boolean }
> {
  const problem = (message: string, missing = false) => ({
    bytes: null,
    problem: { file: displayName, line: 1, column: 1, rule_id: null, message },
    missing,
  });
  const tooLarge = (size: number) =>
    problem(
      `File is ${size} bytes, over the limit of ${limit.bytes} bytes for ${limit.what}: ${limit.advice}`,
    );
  try {
    // Opened without waiting (O_NONBLOCK), then asked what it is: opening a FIFO waits for a writer,
    // and /dev/zero never ends. Checked before opening (a stat), a FIFO renamed over the file in
    // between was opened, and the reload waited for ever: no later edit of the rules was read (the
    // read settled in 0 of 5 runs of tests/rules/load_fifo_race_test.ts). The flag changes nothing
    // for a regular file.
    await using file = await open(path, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
    const info = await file.stat();
    if (!info.isFile()) return problem("Not a regular file");
    if (info.size > limit.bytes) return tooLarge(info.size);
    // One byte more than the limit tells a file that grew since the stat.
    const buffer = new Uint8Array(limit.bytes + 1);
    let n = 0;
    while (n < buffer.length) {
      const { bytesRead } = await file.read(buffer, n, buffer.length - n, null);
      if (bytesRead === 0) break;
      n += bytesRead;
    }
    if (n > limit.bytes) return tooLarge((await file.stat()).size);
    const bytes = buffer.slice(0, n);
    const invalid = firstInvalidUtf8Line(bytes);
    if (invalid !== null) {
      // Decoded leniently, a Latin-1 "°" became U+FFFD in a message or a label, and nobody was told.
      return {
        bytes: null,
        problem: {
          file: displayName,
          line: invalid,
          column: 1,
          rule_id: null,
          message: "File is not UTF-8 text (saved as Latin-1 or UTF-16?): save it as UTF-8",
        },
        missing: false,
      };
    }
    return { bytes, problem: null };
  } catch (err) {
    return problem(
      `Cannot read file: ${(err as Error).message}`,
      (err as { code?: unknown }).code === "ENOENT",
    );
  }
}

const STRICT_UTF8 = new TextDecoder("utf-8", { fatal: true });

/** The line of the first byte that is not UTF-8, or null when the text is UTF-8. */
function firstInvalidUtf8Line(bytes: Uint8Array): number | null {
  try {
    STRICT_UTF8.decode(bytes);
    return null;
  } catch {
    // Where the lenient decoder put its first replacement character (a file rarely holds one of its own).
    const text = new TextDecoder().decode(bytes);
    const at = text.indexOf("\uFFFD");
    let line = 1;
    for (let i = 0; i < at; i++) if (text.charCodeAt(i) === 10) line++;
    return line;
  }
}

/** Files in the rules directory that are not rule files (the notifier configuration). */
export const NON_RULE_FILES: readonly string[] = ["notifiers.yaml", "notifiers.yml"];

/**
 * The `*.yaml` / `*.yml` rule files directly in `dir`, sorted by name. Symlinks count (a Kubernetes
 * ConfigMap mounts every file as one); hidden names do not (editor lock files such as emacs's
 * `.#default.yaml`, and the ConfigMap's own `..data` entries).
 */
export async function listRuleFiles(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (entry.name.startsWith(".") || entry.isDirectory) continue;
    if (/\.ya?ml$/.test(entry.name) && !NON_RULE_FILES.includes(entry.name)) {
      names.push(`${dir.replace(/\/+$/, "")}/${entry.name}`);
    }
  }
  return names.sort();
}
