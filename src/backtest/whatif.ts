/**
 * "What if": one rule, given as YAML text, run by the backtest over the events the service saw
 * recently. The service keeps no event history of its own (its statistics keep a few values per
 * sensor), so `EventHistory` keeps the newest events it accepted: the last hour, at most
 * `maxEvents` of them, the oldest dropped first.
 *
 * @module
 */
import type { InputRecord } from "../contract/records.ts";
import type { SensorEvent } from "../contract/schemas.ts";
import type { DecodedEvent } from "../decode/decode.ts";
import { formatProblem, parseRuleFile, type RuleProblem } from "../rules/load.ts";
import { RuleSet } from "../rules/ruleset.ts";
import { type BacktestReport, buildReport } from "./report.ts";
import { Backtest } from "./run.ts";

/** The history's bounds when not configured: an hour, and ~15 MB of events at most. */
export const historyDefaults = { maxAgeMs: 3_600_000, maxEvents: 50_000 };

interface Kept {
  event: SensorEvent;
  partition: number | null;
  /** When it arrived (wall clock). */
  at: number;
}

/** The newest accepted events, in arrival order, in a ring of fixed size. */
export class EventHistory {
  readonly maxAgeMs: number;
  readonly maxEvents: number;
  readonly #ring: (Kept | undefined)[];
  #next = 0;
  #size = 0;

  constructor(opts: Partial<typeof historyDefaults> = {}) {
    this.maxAgeMs = opts.maxAgeMs ?? historyDefaults.maxAgeMs;
    this.maxEvents = opts.maxEvents ?? historyDefaults.maxEvents;
    this.#ring = new Array(this.maxEvents);
  }

  /** The Pipeline observer's `onEvent`: one slot written, nothing allocated but the entry. */
  onEvent(e: DecodedEvent, record: InputRecord): void {
    this.#ring[this.#next] = { event: e.event, partition: record.partition, at: Date.now() };
    this.#next = (this.#next + 1) % this.maxEvents;
    if (this.#size < this.maxEvents) this.#size++;
  }

  /** The events of the last `maxAgeMs`, oldest first. */
  events(now = Date.now()): Kept[] {
    const out: Kept[] = [];
    const start = (this.#next - this.#size + this.maxEvents) % this.maxEvents;
    for (let i = 0; i < this.#size; i++) {
      const k = this.#ring[(start + i) % this.maxEvents]!;
      if (now - k.at <= this.maxAgeMs) out.push(k);
    }
    return out;
  }

  /** True once the count bound has dropped events: the history is shorter than `maxAgeMs`. */
  get full(): boolean {
    return this.#size === this.maxEvents;
  }
}

/** The YAML text was not one valid rule: its problems, located in the text as given. */
export class WhatIfRuleError extends Error {
  readonly problems: readonly RuleProblem[];
  constructor(problems: readonly RuleProblem[]) {
    super(problems.map(formatProblem).join("\n"));
    this.name = "WhatIfRuleError";
    this.problems = problems;
  }
}

const FILE = "what-if.yaml";

/**
 * One rule from YAML text: a rule's mapping (`id: …`), or a rule file (`rules: [...]`) with one rule.
 * Throws `WhatIfRuleError` with every problem.
 */
export function parseOneRule(text: string): RuleSet {
  const isFile = /^rules\s*:/m.test(text);
  // A bare mapping becomes the one item of a rule file; lines shift by the one added, taken back below.
  const wrapped = isFile
    ? text
    : "rules:\n" + text.split("\n").map((l, i) => (i === 0 ? "  - " : "    ") + l).join("\n");
  const { rules, problems } = parseRuleFile(FILE, wrapped);
  const located = problems.map((p) => ({
    ...p,
    line: isFile ? p.line : Math.max(1, p.line - 1),
    column: isFile || p.line < 2 ? p.column : Math.max(1, p.column - 4),
  }));
  if (located.length > 0) throw new WhatIfRuleError(located);
  if (rules.length !== 1) {
    throw new WhatIfRuleError([{
      file: FILE,
      line: 1,
      column: 1,
      rule_id: null,
      message: `Give exactly one rule, got ${rules.length}`,
    }]);
  }
  return new RuleSet(rules);
}

export interface WhatIfResult {
  history: {
    events: number;
    from: string | null;
    to: string | null;
    max_age_seconds: number;
    max_events: number;
    /** The count bound dropped older events: the history covers less than `max_age_seconds`. */
    capped: boolean;
  };
  report: Omit<BacktestReport, "series">;
}

/**
 * Runs the rule over the history with the backtest's engine, giving the event loop a turn between
 * batches so the service's own work goes on (the engine runs ~100k events/s: 50,000 events ≈ 0.5 s).
 */
export async function whatIf(ruleSet: RuleSet, history: EventHistory): Promise<WhatIfResult> {
  const kept = history.events();
  // Events are accepted already: the future-skew check ran when they arrived.
  const run = new Backtest({ ruleSets: [ruleSet], decode: { requireKey: false } });
  for (let i = 0; i < kept.length; i += 1000) {
    const batch: InputRecord[] = kept.slice(i, i + 1000).map((k) => ({
      topic: "history",
      partition: k.partition,
      offset: null,
      key: null,
      value: JSON.stringify(k.event),
    }));
    run.process(batch);
    await new Promise((r) => setTimeout(r, 0));
  }
  run.finish();
  const { series: _, ...report } = buildReport(run, [{ dir: "what-if", ruleSet }], {
    source: "the service's recent events",
    interrupted: false,
  });
  const iso = (k: Kept | undefined) => k === undefined ? null : new Date(k.at).toISOString();
  return {
    history: {
      events: kept.length,
      from: iso(kept[0]),
      to: iso(kept[kept.length - 1]),
      max_age_seconds: history.maxAgeMs / 1000,
      max_events: history.maxEvents,
      capped: history.full,
    },
    report,
  };
}
