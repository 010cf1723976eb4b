/**
 * Rule files near the size cap: locating problems and entries, and finding duplicate keys, must cost
 * work in proportion to the file. A `limits:` table of 8,000 entries took 8,000 `getIn` searches of
 * the whole table (0.9 s), and yaml's own duplicate check compared every key with every key before
 * it (a flow map of 20,000 keys: 3.7 s).
 */
import assert from "node:assert/strict";
import { Document, YAMLMap, YAMLSeq } from "yaml";
import { parseRuleFile } from "../../src/rules/load.ts";
import { parseYaml } from "../../src/yaml.ts";
import { limitsFile } from "../../scripts/bench/rule_file_stall.ts";

/** Counts calls of the yaml library's searches by path and key (each one a linear scan of a map). */
function countSearches<T>(run: () => T): { result: T; searches: number } {
  let searches = 0;
  const originals = [
    [Document.prototype, "getIn"],
    [YAMLMap.prototype, "get"],
    [YAMLSeq.prototype, "get"],
  ] as const;
  const saved = originals.map(([proto, name]) => (proto as unknown as Record<string, unknown>)[name]);
  for (const [i, [proto, name]] of originals.entries()) {
    const original = saved[i] as (...args: unknown[]) => unknown;
    (proto as unknown as Record<string, unknown>)[name] = function (this: unknown, ...args: unknown[]) {
      searches++;
      return original.apply(this, args);
    };
  }
  try {
    return { result: run(), searches };
  } finally {
    for (const [i, [proto, name]] of originals.entries()) {
      (proto as unknown as Record<string, unknown>)[name] = saved[i];
    }
  }
}

Deno.test("a limits table of 8,000 entries is located from one walk of the file, with no search per entry", () => {
  const { result, searches } = countSearches(() => parseRuleFile("big.yaml", limitsFile(8_000)));
  assert.deepEqual(result.problems, []);
  const [table] = result.limits!;
  assert.equal(table!.entryLines.size, 8_001);
  assert.equal(table!.entryLines.get("default\u0000"), 5);
  assert.equal(table!.entryLines.get("sensor_id\u0000tmp-00000"), 7);
  assert.equal(table!.entryLines.get("sensor_id\u0000tmp-07999"), 8_006);
  assert.deepEqual(table!.source, { file: "big.yaml", line: 4, column: 3 });
  // Before: 8,000 getIn calls, each a linear search of the table.
  assert.equal(searches, 0);
});

Deno.test("a flow map of 20,000 keys: a duplicate key is reported at its own line, a problem located by index", () => {
  const keys: string[] = [];
  for (let i = 0; i < 20_000; i++) keys.push(`k${i.toString(36).padStart(4, "0")}: v`);
  keys.push("k0005: again"); // the sixth key, written again at the end
  // 100 keys a line, so the duplicate is on the map's last line (2 + 200).
  const lines: string[] = [];
  for (let i = 0; i < keys.length; i += 100) lines.push(`      ${keys.slice(i, i + 100).join(", ")},`);
  const text =
    `rules:\n  - id: wide\n    sensor_type: temperature\n    threshold: { max: 1 }\n    priority: low\n` +
    `    labels: {\n${lines.join("\n")}\n      }\n`;
  const { result: doc, searches } = countSearches(() => parseYaml("wide.yaml", text));
  assert.deepEqual(doc.problems, [{
    file: "wide.yaml",
    line: 207,
    column: 7,
    message: 'Map keys must be unique: "k0005" is also at line 7',
  }]);
  assert.equal(doc.value, null);
  assert.deepEqual(
    doc.locate(["rules", 0, "labels", "k0fff"]).line,
    7 + Math.floor(parseInt("0fff", 36) / 100),
  );
  assert.deepEqual(doc.locateKey(["rules", 0, "priority"]), { line: 5, column: 5 });
  assert.deepEqual(doc.locateAtKey(["rules", 0, "labels"]), { line: 6, column: 5 });
  assert.deepEqual(doc.locate(["rules", 0, "nowhere", "deeper"]), { line: 2, column: 5 });
  assert.equal(searches, 0);
});

Deno.test("a key written twice in a block map is a problem at the second one, in a rule and in a limits table", () => {
  const rule = parseRuleFile(
    "dup.yaml",
    "rules:\n  - id: hot\n    sensor_type: temperature\n    threshold: { max: 35 }\n    priority: high\n" +
      "    priority: low\n",
  );
  assert.deepEqual(rule.problems, [{
    file: "dup.yaml",
    line: 6,
    column: 5,
    rule_id: null,
    message: 'Map keys must be unique: "priority" is also at line 5',
  }]);
  const table = parseRuleFile(
    "dup.yaml",
    "limits:\n  fleet:\n    sensor_id:\n      a: { max: 1 }\n      b: { max: 2 }\n      a: { max: 3 }\n",
  );
  assert.deepEqual(table.problems.map((p) => [p.line, p.column, p.message]), [
    [6, 7, 'Map keys must be unique: "a" is also at line 4'],
  ]);
});

Deno.test("aliases that expand a file far beyond what is written are refused before the file is built, at the first alias; shared anchors are not", () => {
  // 99 aliases of a 125,000-item list (253 KB): yaml's maxAliasCount lets it through (no alias
  // inside another), and the file loaded in 13 s with an 11.8 s pause and 1.95 GB.
  const list = Array.from({ length: 125_000 }, () => "1").join(",");
  const aliases = Array.from({ length: 99 }, () => `{"in": [{"var": "value"}, *A]}`).join(", ");
  const bomb = `rules:\n  - id: r\n    priority: low\n    sensor_type: temperature\n` +
    `    condition: {"or": [{"in": [{"var": "value"}, &A [${list}]]}, ${aliases}]}\n`;
  const r = parseRuleFile("bomb.yaml", bomb);
  assert.equal(r.rules.length, 0);
  assert.deepEqual(
    r.problems.map((p) => `${p.line} ${p.message}`),
    ["5 Aliases expand this file to more than 225615 values (125615 written): at most 100000 more than written"],
  );
  // What anchors are for: one block of settings shared by rules, merged in, and nested aliases.
  const shared = parseYaml(
    "shared.yaml",
    `%YAML 1.1\n---\nd: &d { priority: low, labels: { team: ops } }\nlist: &l [1, 2, 3]\n` +
      `nested: &n [*l, *l]\nrules:\n` +
      Array.from({ length: 25 }, (_, i) => `  - { <<: *d, id: r${i}, tags: *n }\n`).join(""),
  );
  assert.deepEqual(shared.problems, []);
  const rules = (shared.value as { rules: { priority: string; tags: number[][] }[] }).rules;
  assert.equal(rules.length, 25);
  assert.equal(rules[24]!.priority, "low");
  assert.deepEqual(rules[0]!.tags, [[1, 2, 3], [1, 2, 3]]);
});
