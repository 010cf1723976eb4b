/**
 * The difference of two backtests' episodes: the review of a rules change. Episodes are the same
 * episode when they have the same rule id and group and overlap in time; such a pair whose start or
 * end differs is "changed". Whatever is left is only in A or only in B.
 *
 * @module
 */
import type { BacktestEpisode } from "./episodes.ts";

export interface ChangedEpisode {
  a: BacktestEpisode;
  b: BacktestEpisode;
}

export interface RuleDiff {
  rule_id: string;
  a: number;
  b: number;
  only_a: number;
  only_b: number;
  changed: number;
  same: number;
}

export interface EpisodeDiff {
  only_a: BacktestEpisode[];
  only_b: BacktestEpisode[];
  changed: ChangedEpisode[];
  same: number;
  /** Per rule with an episode in either side, in A's rule order then B's new rules. */
  rules: RuleDiff[];
}

export function diffEpisodes(
  a: readonly BacktestEpisode[],
  b: readonly BacktestEpisode[],
  ruleOrder: readonly string[] = [],
): EpisodeDiff {
  const out: EpisodeDiff = { only_a: [], only_b: [], changed: [], same: 0, rules: [] };
  const byRule = new Map<string, RuleDiff>();
  const row = (rule_id: string) => {
    let r = byRule.get(rule_id);
    if (r === undefined) {
      byRule.set(rule_id, r = { rule_id, a: 0, b: 0, only_a: 0, only_b: 0, changed: 0, same: 0 });
    }
    return r;
  };
  for (const id of ruleOrder) row(id);
  const groups = new Map<string, { a: BacktestEpisode[]; b: BacktestEpisode[] }>();
  const put = (side: "a" | "b", list: readonly BacktestEpisode[]) => {
    for (const ep of list) {
      const key = `${ep.rule_id}\u0000${ep.group}`;
      let g = groups.get(key);
      if (g === undefined) groups.set(key, g = { a: [], b: [] });
      g[side].push(ep);
      row(ep.rule_id)[side]++;
    }
  };
  put("a", a);
  put("b", b);
  for (const g of groups.values()) {
    const usedB = new Set<number>();
    const pairs: [BacktestEpisode, BacktestEpisode | null][] = [];
    // Identical episodes first, then the first overlapping one: a shifted start pairs with the
    // episode it shifted, not with a neighbour that happens to be identical to another.
    const unpaired: BacktestEpisode[] = [];
    for (const x of g.a) {
      const j = g.b.findIndex((y, j) => !usedB.has(j) && y.start === x.start && y.end === x.end);
      if (j >= 0) {
        usedB.add(j);
        pairs.push([x, g.b[j]!]);
      } else unpaired.push(x);
    }
    for (const x of unpaired) {
      const j = g.b.findIndex((y, j) => !usedB.has(j) && overlaps(x, y));
      if (j >= 0) usedB.add(j);
      pairs.push([x, j >= 0 ? g.b[j]! : null]);
    }
    for (const [x, y] of pairs) {
      const r = row(x.rule_id);
      if (y === null) {
        out.only_a.push(x);
        r.only_a++;
      } else if (y.start === x.start && y.end === x.end) {
        out.same++;
        r.same++;
      } else {
        out.changed.push({ a: x, b: y });
        r.changed++;
      }
    }
    g.b.forEach((y, j) => {
      if (usedB.has(j)) return;
      out.only_b.push(y);
      row(y.rule_id).only_b++;
    });
  }
  const byStart = (x: BacktestEpisode, y: BacktestEpisode) => x.start - y.start;
  out.only_a.sort(byStart);
  out.only_b.sort(byStart);
  out.changed.sort((x, y) => byStart(x.a, y.a));
  out.rules = [...byRule.values()].filter((r) => r.a + r.b > 0 || ruleOrder.includes(r.rule_id));
  return out;
}

/** Time ranges overlap; an open end runs to the end of the input. */
function overlaps(x: BacktestEpisode, y: BacktestEpisode): boolean {
  const xEnd = x.end ?? Infinity;
  const yEnd = y.end ?? Infinity;
  return x.start <= yEnd && y.start <= xEnd;
}
