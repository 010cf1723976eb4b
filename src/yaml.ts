/**
 * YAML with positions: every configuration file (rules, rule tests, notifiers) is parsed here, so
 * every error can say `file:line:col`.
 *
 * @module
 */
import { isMap, isNode, isScalar, isSeq, LineCounter, parseDocument, visit } from "yaml";
import type { z } from "zod";

export interface Position {
  line: number;
  column: number;
}

/** A problem located in a file. */
export interface YamlProblem extends Position {
  file: string;
  message: string;
}

export interface YamlDocument {
  /** The plain JavaScript value (null for an empty file). */
  value: unknown;
  /** Syntax errors; when non-empty, `value` is null. */
  problems: YamlProblem[];
  /** The position of the deepest existing node on `path`, so a missing field points at its parent. */
  locate(path: readonly (string | number)[]): Position;
  /** The position of the key of the last step of `path` (a misspelt field is its key); else `locate`. */
  locateKey(path: readonly (string | number)[]): Position;
  /**
   * Like `locate`, but a mapping or sequence is located at its key: a block one starts on the line
   * after its key, and the key is where the problem was written.
   */
  locateAtKey(path: readonly (string | number)[]): Position;
}

export function parseYaml(file: string, text: string): YamlDocument {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const at = (offset: number): Position => {
    const pos = lineCounter.linePos(offset);
    return { line: pos.line, column: pos.col };
  };
  const keyAt = (path: readonly (string | number)[], key: string | number): Position | null => {
    const map = path.length === 0 ? doc.contents : doc.getIn(path, true);
    if (!isMap(map)) return null;
    const pair = map.items.find((p) => isScalar(p.key) && p.key.value === key);
    return pair && isScalar(pair.key) && pair.key.range ? at(pair.key.range[0]) : null;
  };
  const find = (path: readonly (string | number)[], atKey: boolean): Position => {
    for (let n = path.length; n >= 0; n--) {
      const node = n === 0 ? doc.contents : doc.getIn(path.slice(0, n), true);
      if (!isNode(node) || !node.range) continue;
      if (atKey && n > 0 && (isMap(node) || isSeq(node))) {
        const key = keyAt(path.slice(0, n - 1), path[n - 1]!);
        if (key !== null) return key;
      }
      return at(node.range[0]);
    }
    return { line: 1, column: 1 };
  };
  const locate = (path: readonly (string | number)[]) => find(path, false);
  const located = {
    locate,
    locateKey: (path: readonly (string | number)[]) =>
      (path.length > 0 ? keyAt(path.slice(0, -1), path.at(-1)!) : null) ?? locate(path),
    locateAtKey: (path: readonly (string | number)[]) => find(path, true),
  };
  if (doc.errors.length > 0) {
    return {
      value: null,
      problems: doc.errors.map((e) => ({ file, ...at(e.pos[0]), message: e.message.split("\n")[0]! })),
      ...located,
    };
  }
  let value: unknown;
  try {
    value = doc.toJS() ?? null;
  } catch (err) {
    // Aliases are resolved here, not by the parser: `*a` before `&a`, or an alias bomb (yaml's
    // maxAliasCount), throws.
    let offset = 0;
    visit(doc, {
      Alias(_key, node) {
        if (node.resolve(doc) !== undefined || !node.range) return;
        offset = node.range[0];
        return visit.BREAK;
      },
    });
    return { value: null, problems: [{ file, ...at(offset), message: (err as Error).message }], ...located };
  }
  return { value, problems: [], ...located };
}

/** A zod issue as a located problem: `Field "a.b": expected …`. */
export function issueProblem(
  file: string,
  doc: YamlDocument,
  base: readonly (string | number)[],
  issue: z.core.$ZodIssue,
  entry = "Entry",
): YamlProblem {
  const path = issue.path.filter((p): p is string | number => typeof p !== "symbol");
  if (issue.code === "unrecognized_keys" && issue.keys.length > 0) {
    // At the misspelt key itself, not at the start of the object that holds it.
    const at = [...path, issue.keys[0]!];
    const names = issue.keys.map((k) => `"${[...path, k].join(".")}"`).join(", ");
    return {
      file,
      ...doc.locateKey([...base, ...at]),
      message: `No such field ${names}${
        base.length > 0 && path.length === 0 ? ` in this ${entry.toLowerCase()}` : ""
      }`,
    };
  }
  const subject = path.length > 0 ? `Field "${path.join(".")}"` : base.length > 0 ? entry : "File";
  return { file, ...doc.locate([...base, ...path]), message: `${subject}: ${issueMessage(issue)}` };
}

/** A union's "Invalid input" says nothing; the first alternative's own complaint does. */
export function issueMessage(issue: z.core.$ZodIssue): string {
  if (issue.code === "invalid_union" && issue.errors.length > 0 && issue.errors[0]!.length > 0) {
    return issueMessage(issue.errors[0]![0]!);
  }
  return issue.message.replace(/^Invalid input: /, "").replace(/^Invalid option: /, "");
}

/** Parses and validates a whole file against `schema`; problems name file, line and field. */
export function parseYamlWith<S extends z.ZodType>(
  file: string,
  text: string,
  schema: S,
): { data: z.output<S> | null; problems: YamlProblem[]; doc: YamlDocument } {
  const doc = parseYaml(file, text);
  if (doc.problems.length > 0) return { data: null, problems: doc.problems, doc };
  const parsed = schema.safeParse(doc.value ?? {});
  if (!parsed.success) {
    return { data: null, problems: parsed.error.issues.map((i) => issueProblem(file, doc, [], i)), doc };
  }
  return { data: parsed.data, problems: [], doc };
}
