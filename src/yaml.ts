/**
 * YAML with positions: every configuration file (rules, rule tests, notifiers) is parsed here, so
 * every error can say `file:line:col`.
 *
 * @module
 */
import {
  isAlias,
  isMap,
  isNode,
  isPair,
  isScalar,
  isSeq,
  LineCounter,
  type Pair,
  parseDocument,
  visit,
  type YAMLMap,
} from "yaml";
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
  // yaml's own duplicate check (uniqueKeys) compares each key with every key before it in its map: a
  // flow map of 20,000 keys (200 KB) took 3.7 s. The walk below finds them with a Map per map instead.
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: false });
  const at = (offset: number): Position => {
    const pos = lineCounter.linePos(offset);
    return { line: pos.line, column: pos.col };
  };
  // Each map's pairs by key, built in one walk of the document: `getIn` searches each map on the path
  // linearly, and locating the 8,000 entries of a limits table that way took 0.9 s (72,015 searches).
  const index = new Map<YAMLMap, Map<string, Pair>>();
  const duplicates: YamlProblem[] = [];
  let aliases = false;
  visit(doc, {
    Alias() {
      aliases = true;
    },
    Map(_key, map) {
      const pairs = new Map<string, Pair>();
      // By the key's own value, as yaml's check was (1 and "1" are different keys).
      const seen = new Map<unknown, Pair>();
      for (const pair of map.items) {
        if (!isScalar(pair.key)) continue;
        const value = pair.key.value;
        const first = seen.get(value);
        if (first !== undefined) {
          const firstAt = isNode(first.key) && first.key.range ? at(first.key.range[0]).line : null;
          duplicates.push({
            file,
            ...at(pair.key.range?.[0] ?? 0),
            message: `Map keys must be unique: "${String(value)}"` +
              (firstAt === null ? "" : ` is also at line ${firstAt}`),
          });
          continue;
        }
        seen.set(value, pair);
        pairs.set(String(value), pair);
      }
      index.set(map, pairs);
    },
  });
  const child = (node: unknown, step: string | number): unknown => {
    if (isMap(node)) return index.get(node)?.get(String(step))?.value ?? undefined;
    if (isSeq(node)) return node.items[Number(step)];
    return undefined;
  };
  /** The nodes along `path` that exist: the document's root first. */
  const nodesOn = (path: readonly (string | number)[]): unknown[] => {
    const nodes: unknown[] = [doc.contents];
    for (const step of path) {
      const next = child(nodes.at(-1), step);
      if (next === undefined || next === null) break;
      nodes.push(next);
    }
    return nodes;
  };
  const keyAt = (path: readonly (string | number)[], key: string | number): Position | null => {
    const nodes = nodesOn(path);
    if (nodes.length !== path.length + 1) return null;
    const map = nodes.at(-1);
    if (!isMap(map)) return null;
    const pair = index.get(map)?.get(String(key));
    return pair && isScalar(pair.key) && pair.key.range ? at(pair.key.range[0]) : null;
  };
  const find = (path: readonly (string | number)[], atKey: boolean): Position => {
    const nodes = nodesOn(path);
    for (let n = nodes.length - 1; n >= 0; n--) {
      const node = nodes[n];
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
  if (doc.errors.length > 0 || duplicates.length > 0) {
    const problems = [
      ...doc.errors.map((e) => ({ file, ...at(e.pos[0]), message: e.message.split("\n")[0]! })),
      ...duplicates,
    ];
    return {
      value: null,
      problems: problems.sort((a, b) => a.line - b.line || a.column - b.column),
      ...located,
    };
  }
  const bomb = aliases ? aliasExpansion(doc.contents) : null;
  if (bomb !== null) {
    return {
      value: null,
      problems: [{
        file,
        ...at(bomb.offset),
        message: `Aliases expand this file to more than ${bomb.written + MAX_ALIASED_NODES} values ` +
          `(${bomb.written} written): at most ${MAX_ALIASED_NODES} more than written`,
      }],
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

/**
 * The most values aliases may add to a file beyond those written. yaml's own `maxAliasCount` stops
 * aliases of aliases (the "billion laughs"), not 100 aliases of one large node: a 253 KB file of a
 * 125,000-item list aliased 99 times loaded in 13 s with one 11.8 s pause and 1.95 GB, and a worker
 * with a 1 GiB heap died of it. Sharing a label map or a condition between rules adds a few each.
 */
export const MAX_ALIASED_NODES = 100_000;

/**
 * Counts the values `root` stands for with its aliases expanded (merge keys are aliases too), each
 * node once (what an anchored node stands for is kept): null within the budget, else where the first
 * alias is and how many values are written.
 */
function aliasExpansion(root: unknown): { offset: number; written: number } | null {
  let written = 0;
  let firstAlias: number | null = null;
  const expanded = new Map<unknown, number>();
  /** The node each anchor names so far (an anchor named again names the later node from there on). */
  const anchors = new Map<string, unknown>();
  // Iterative (a file nested 100,000 levels deep is parsed): post-order over the written nodes.
  const stack: { node: unknown; done: boolean }[] = [{ node: root, done: false }];
  const children = (node: unknown): unknown[] => {
    if (isMap(node)) return node.items.flatMap((p) => (isPair(p) ? [p.key, p.value] : []));
    if (isSeq(node)) return node.items;
    return [];
  };
  while (stack.length > 0) {
    const top = stack.pop()!;
    const node = top.node;
    if (node === null || node === undefined || expanded.has(node)) continue;
    if (isAlias(node)) {
      firstAlias ??= node.range?.[0] ?? 0;
      // The anchored node comes before its alias in the document: it is counted already.
      const source = anchors.get(node.source);
      expanded.set(node, source === undefined ? 1 : expanded.get(source) ?? 1);
      continue;
    }
    if (!top.done) {
      written++;
      const anchor = (node as { anchor?: unknown }).anchor;
      if (typeof anchor === "string") anchors.set(anchor, node);
      stack.push({ node, done: true });
      const kids = children(node);
      for (let i = kids.length - 1; i >= 0; i--) stack.push({ node: kids[i], done: false });
      continue;
    }
    let n = 1;
    for (const c of children(node)) n += c === null || c === undefined ? 0 : expanded.get(c) ?? 1;
    expanded.set(node, n);
  }
  if (firstAlias === null) return null;
  const total = expanded.get(root) ?? 0;
  return total > written + MAX_ALIASED_NODES ? { offset: firstAlias, written } : null;
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
