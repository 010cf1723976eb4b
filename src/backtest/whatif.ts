/**
 * "What if": one rule, given as YAML text, run by the backtest over recent events, from a
 * `WhatIfHistory`. With Kafka that is the events topic itself (whatif_topic.ts): the engine runs in
 * worker threads and other instances, each seeing only its own partitions. Without Kafka (embedded,
 * replay) the service keeps no event history of its own (its statistics keep a few values per
 * sensor), so `EventHistory` keeps the newest events it accepted: the last hour of event time, at
 * most `maxEvents` of them, the oldest dropped first.
 *
 * @module
 */
import type { InputRecord } from "../contract/records.ts";
import type { SensorEvent } from "../contract/schemas.ts";
import type { DecodedEvent, DecodeOptions } from "../decode/decode.ts";
import { formatProblem, parseRuleFile, type RuleProblem } from "../rules/load.ts";
import { compileWithDeadlineChecks, withLogicDeadline } from "../rules/logic.ts";
import { RuleSet } from "../rules/ruleset.ts";
import { type BacktestReport, buildReport } from "./report.ts";
import { Backtest } from "./run.ts";

/** The history's bounds when not configured: an hour of event time, and 50,000 events at most. */
export const historyDefaults = { maxAgeMs: 3_600_000, maxEvents: 50_000, maxSensors: 100_000 };

/** Where a what-if's events come from. */
export interface WhatIfHistory {
  /** `memory`: the events this process accepted; `topic`: the events topic, every partition. */
  readonly source: "memory" | "topic";
  /** What the report names as its source. */
  readonly label: string;
  /** The longest window it can give. */
  readonly maxWindowMs: number;
  /** At most this many events per what-if. */
  readonly maxEvents: number;
  /** Opens the events of the last `windowMs`. */
  read(windowMs: number): Promise<HistoryRead>;
}

/** The events of one what-if, being read. */
export interface HistoryRead {
  batches: AsyncIterable<readonly InputRecord[]>;
  /** The count bound left the oldest events out: what is read covers less than the window. */
  capped: boolean;
  /** How the records are decoded (the checks the service would make). */
  decode: DecodeOptions;
  /** Stops reading: the iteration ends. */
  close(): Promise<void>;
}

/** What the history keeps of a sensor once, not per event. */
interface SensorFacts {
  sensor_id: string;
  sensor_type: SensorEvent["sensor_type"];
  unit: string;
  location: string | null;
}

/** An event as the history gives it back. */
export interface KeptEvent {
  event: SensorEvent;
  partition: number | null;
}

/**
 * The newest accepted events in a ring of columns: event time and value as numbers, the sensor as an
 * index into a table of its facts (id, type, unit, location). A ring of the events themselves cost
 * the Pipeline 18-30% more CPU (they outlive the young generation); the columns allocate nothing per
 * event and cost nothing measurable. CPU time of `Pipeline.evaluate` over 200,000 simulator events with
 * the shipped rules, 12 runs each, min / median: LiveFeed alone 818 / 903 ms, with this history
 * 765 / 965 ms, with a ring of event objects 965 / 1178 ms. What is not kept: an event's id (the
 * history's own ids stand in), its metadata, and a unit or location that changed within the hour (the
 * newest stands).
 */
export class EventHistory implements WhatIfHistory {
  readonly source = "memory";
  readonly label = "the service's recent events";
  readonly maxAgeMs: number;
  readonly maxEvents: number;
  readonly #maxSensors: number;
  readonly #time: Float64Array;
  readonly #value: Float64Array;
  readonly #sensor: Int32Array;
  /** Input partition + 1; 0 for none. */
  readonly #partition: Int32Array;
  readonly #facts: SensorFacts[] = [];
  /** By sensor type, then id: two lookups, no key built per event. */
  readonly #index = new Map<string, Map<string, number>>();
  #next = 0;
  #size = 0;
  /** Events not kept because the sensor table was full. */
  skipped = 0;

  constructor(opts: Partial<typeof historyDefaults> = {}) {
    this.maxAgeMs = opts.maxAgeMs ?? historyDefaults.maxAgeMs;
    this.maxEvents = opts.maxEvents ?? historyDefaults.maxEvents;
    this.#maxSensors = opts.maxSensors ?? historyDefaults.maxSensors;
    this.#time = new Float64Array(this.maxEvents);
    this.#value = new Float64Array(this.maxEvents);
    this.#sensor = new Int32Array(this.maxEvents);
    this.#partition = new Int32Array(this.maxEvents);
  }

  /** The Pipeline observer's `onEvent`. */
  onEvent(e: DecodedEvent, record: InputRecord): void {
    const ev = e.event;
    let byId = this.#index.get(ev.sensor_type);
    if (byId === undefined) this.#index.set(ev.sensor_type, byId = new Map());
    let s = byId.get(ev.sensor_id);
    if (s === undefined) {
      if (this.#facts.length >= this.#maxSensors) {
        this.skipped++;
        return;
      }
      s = this.#facts.length;
      this.#facts.push({
        sensor_id: ev.sensor_id,
        sensor_type: ev.sensor_type,
        unit: ev.unit,
        location: null,
      });
      byId.set(ev.sensor_id, s);
    }
    const facts = this.#facts[s]!;
    if (facts.unit !== ev.unit) facts.unit = ev.unit;
    if (facts.location !== (ev.location ?? null)) facts.location = ev.location ?? null;
    const i = this.#next;
    this.#time[i] = e.time;
    this.#value[i] = ev.value;
    this.#sensor[i] = s;
    this.#partition[i] = record.partition === null ? 0 : record.partition + 1;
    this.#next = (i + 1) % this.maxEvents;
    if (this.#size < this.maxEvents) this.#size++;
  }

  get maxWindowMs(): number {
    return this.maxAgeMs;
  }

  /** The events of the last `windowMs` of event time (before the newest), in arrival order. */
  events(windowMs = this.maxAgeMs): KeptEvent[] {
    const window = Math.min(windowMs, this.maxAgeMs);
    const start = (this.#next - this.#size + this.maxEvents) % this.maxEvents;
    let newest = -Infinity;
    for (let i = 0; i < this.#size; i++) newest = Math.max(newest, this.#time[(start + i) % this.maxEvents]!);
    const out: KeptEvent[] = [];
    for (let i = 0; i < this.#size; i++) {
      const at = (start + i) % this.maxEvents;
      const time = this.#time[at]!;
      if (newest - time > window) continue;
      const f = this.#facts[this.#sensor[at]!]!;
      const p = this.#partition[at]!;
      out.push({
        event: {
          event_id: `history-${i}`,
          sensor_id: f.sensor_id,
          sensor_type: f.sensor_type,
          value: this.#value[at]!,
          unit: f.unit,
          timestamp: new Date(time).toISOString(),
          location: f.location,
          metadata: {},
          schema_version: 1,
        },
        partition: p === 0 ? null : p - 1,
      });
    }
    return out;
  }

  /** True once the count bound has dropped events: the history may be shorter than `maxAgeMs`. */
  get full(): boolean {
    return this.#size === this.maxEvents;
  }

  read(windowMs: number): Promise<HistoryRead> {
    const kept = this.events(windowMs);
    // The count bound cut the window short only when all that is left lies within it.
    const oldest = kept.length === 0 ? Infinity : Date.parse(kept[0]!.event.timestamp);
    const newest = kept.length === 0 ? -Infinity : Date.parse(kept[kept.length - 1]!.event.timestamp);
    const capped = this.full && kept.length === this.#size && newest - oldest < windowMs;
    let closed = false;
    async function* batches(): AsyncGenerator<InputRecord[]> {
      for (let i = 0; i < kept.length && !closed; i += 1000) {
        yield kept.slice(i, i + 1000).map((k) => ({
          topic: "history",
          partition: k.partition,
          offset: null,
          key: null,
          value: JSON.stringify(k.event),
        }));
      }
    }
    return Promise.resolve({
      batches: batches(),
      capped,
      // Events are accepted already: the future-skew check ran when they arrived.
      decode: { requireKey: false },
      close: () => {
        closed = true;
        return Promise.resolve();
      },
    });
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
  // Its operations count as steps of `withLogicDeadline`, so one costly step stops the what-if too.
  const { rules, problems } = compileWithDeadlineChecks(() => parseRuleFile(FILE, wrapped));
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

/**
 * A what-if's bounds when not given: the last hour, and 20 s of reading and judging at most (ten
 * times what 100,000 events from the topic took on the loaded machine).
 */
export const whatIfDefaults = { windowMs: 3_600_000, timeLimitMs: 20_000 };

export interface WhatIfOptions {
  /** The history's last this much; default an hour (or less when the history holds less). */
  windowMs?: number;
  /** Reading stops after this: the answer covers what was read by then. */
  timeLimitMs?: number;
}

export interface WhatIfResult {
  history: {
    source: WhatIfHistory["source"];
    /** Records read. */
    events: number;
    /** Event time of the first and newest event. */
    from: string | null;
    to: string | null;
    window_seconds: number;
    max_events: number;
    /** The count bound left the oldest events out: what was read covers less than the window. */
    capped: boolean;
    /** The time limit stopped the reading: what was read covers less than the window. */
    timed_out: boolean;
  };
  report: Omit<BacktestReport, "series">;
}

/**
 * The engine gets the event loop for `SLICE_MS` at a time, `STEP` events at once: with a fixed 1,000
 * events between turns, a turn took 15-40 ms on the loaded 2-core machine (load 6), up to 170 ms.
 */
const STEP = 100;
const SLICE_MS = 10;
/**
 * How long one chunk of `STEP` events (or the final flush) may hold the event loop: past it the rule's
 * loops stop (`withLogicDeadline`) and the what-if ends as at its time limit. A chunk of the shipped
 * kinds of rule takes 2-17 ms on the loaded machine; a condition of three nested `all` over 200 literal
 * items took 0.1-0.3 s per event, so 20 events held the event loop 1.9 s in one piece (every request to
 * the server, and in embedded mode the engine, waited), and 1,000 items ~16 s per event: 27 min.
 */
const MAX_TURN_MS = 250;
const TIME_UP = Symbol("time up");

/**
 * Runs the rule over the history's last `windowMs` with the backtest's engine, giving the event loop
 * a turn between chunks so the service's own work goes on, and stopping at the time limit.
 */
export async function whatIf(
  ruleSet: RuleSet,
  history: WhatIfHistory,
  opts: WhatIfOptions = {},
): Promise<WhatIfResult> {
  const windowMs = Math.min(opts.windowMs ?? whatIfDefaults.windowMs, history.maxWindowMs);
  const limitMs = opts.timeLimitMs ?? whatIfDefaults.timeLimitMs;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeUp = new Promise<typeof TIME_UP>((r) => timer = setTimeout(() => r(TIME_UP), limitMs));
  let timedOut = false;
  const reading = history.read(windowMs);
  let read: HistoryRead | typeof TIME_UP;
  try {
    read = await Promise.race([reading, timeUp]);
  } catch (err) {
    clearTimeout(timer);
    throw err;
  }
  const run = new Backtest({
    ruleSets: [ruleSet],
    decode: read === TIME_UP ? { requireKey: false } : read.decode,
  });
  try {
    if (read === TIME_UP) {
      timedOut = true;
      // Once open (or failed), let go: nobody waits for it any more.
      reading.then((r) => r.close(), () => {});
    } else {
      const it = read.batches[Symbol.asyncIterator]();
      let sliceStart = performance.now();
      const limitEnd = sliceStart + limitMs;
      try {
        batches: for (;;) {
          const next = await Promise.race([it.next(), timeUp]);
          if (next === TIME_UP) {
            timedOut = true;
            break;
          }
          if (next.done) break;
          for (let i = 0; i < next.value.length; i += STEP) {
            const chunk = next.value.length <= STEP ? next.value : next.value.slice(i, i + STEP);
            const turnEnd = Math.min(limitEnd, performance.now() + MAX_TURN_MS);
            if (withLogicDeadline(turnEnd, () => run.process(chunk))) {
              timedOut = true;
              break batches;
            }
            if (performance.now() - sliceStart < SLICE_MS) continue;
            const turn = await Promise.race([new Promise((r) => setTimeout(r, 0)), timeUp]);
            if (turn === TIME_UP) {
              timedOut = true;
              break batches;
            }
            sliceStart = performance.now();
          }
        }
      } finally {
        await read.close();
      }
    }
  } finally {
    clearTimeout(timer);
  }
  // Closing the windows evaluates their conditions too.
  if (withLogicDeadline(performance.now() + MAX_TURN_MS, () => run.finish())) timedOut = true;
  const { series: _, ...report } = buildReport(run, [{ dir: "what-if", ruleSet }], {
    source: history.label,
    interrupted: timedOut,
  });
  return {
    history: {
      source: history.source,
      events: run.records,
      from: report.input.from,
      to: report.input.to,
      window_seconds: windowMs / 1000,
      max_events: history.maxEvents,
      capped: read !== TIME_UP && read.capped,
      timed_out: timedOut,
    },
    report,
  };
}
