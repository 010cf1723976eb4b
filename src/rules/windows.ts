import type { SensorEvent, SensorType } from "../contract/schemas.ts";
import type { WindowSpec } from "./compile.ts";
import { newSketch, type QuantileSketch, sketchAdd, sketchQuantile } from "./quantile_sketch.ts";
import { durationMs } from "./schema.ts";

/**
 * Values a window keeps for an exact `p95`; from one more on, a quantile sketch holds them (within 1%,
 * src/rules/quantile_sketch.ts). The window goes into the changelog at every checkpoint of its group, so
 * the cap is what a checkpoint costs: 2,048 values measured 14,541 bytes of record for readings like
 * 23.456 (7.1 bytes a value), 50,557 bytes at worst (the longest numbers, 24 characters); the sketch
 * beyond measured 6,596 bytes at 200,000 values (649 buckets), 16,914 at its 2,048 buckets. Before,
 * every value was kept: 60,000 events of one group made a 1,116,931-byte record, over the broker's
 * default max.message.bytes (1,048,588). At this cap even 17 open windows of a group at their worst (a
 * sliding window with size/slide 17) fit the 900 KiB of a state record; a 1-hour window of one event
 * per 2 s stays exact.
 */
export const P95_EXACT_VALUES = 2048;

/** An event of a new group refused by a window rule that holds its limit of open groups. */
export class WindowGroupLimitError extends Error {
  override readonly name = "WindowGroupLimitError";
}

/** Running aggregate of one window for one group. Welford's method keeps stddev stable. */
export interface Acc {
  start: number;
  end: number;
  count: number;
  sum: number;
  mean: number;
  m2: number;
  min: number;
  max: number;
  first: number;
  firstT: number;
  last: number;
  lastT: number;
  /**
   * The window's values while there are at most `P95_EXACT_VALUES` of them (for `p95`), null when the
   * rule needs no `p95` or once `sketch` holds them.
   */
  values: number[] | null;
  /** The window's values past `P95_EXACT_VALUES`; absent until then (and in older changelogs). */
  sketch?: QuantileSketch;
  sensor_id: string;
  sensor_type: SensorType;
  unit: string;
  location: string | null;
}

/** A window that closed, with everything a condition or an AggregatedSensorEvent needs. */
export interface ClosedWindow {
  group: string;
  start: number;
  end: number;
  sensor_id: string;
  sensor_type: SensorType;
  unit: string;
  location: string | null;
  /** avg, min, …, plus group, window_start, window_end: the data the rule's condition sees. */
  aggregate: Record<string, unknown>;
}

/**
 * Event-time windows of one rule. Each group keeps its own time, the newest event time it sent: a
 * group's window closes when that time, or the partition's clock (`advance`), passes the window's end
 * plus `allowed_lateness`. An event for a window that has closed that way is late: counted and left
 * out. So a sensor stamped ahead of the others moves its own group's windows, not theirs.
 */
export class WindowState {
  spec: WindowSpec;
  /** The partition's clock as last applied by `advance`. */
  watermark = -Infinity;
  late = 0;
  readonly #byEnd = new Map<number, Map<string, Acc>>();
  #ends: number[] = [];
  readonly #count = new Map<string, Acc>();
  /**
   * Open windows per group with any. Its size is what `maxGroups` bounds: the producer chooses the
   * groups of a rule grouped by `location` or `metadata.<key>`, one per event if it likes.
   */
  readonly #openOf = new Map<string, number>();
  readonly #maxGroups: number;
  /** Each group's newest event time. */
  readonly #groupTime = new Map<string, number>();
  readonly #size: number;
  readonly #slide: number;
  readonly #keepValues: boolean;

  /**
   * `maxGroups`: groups with an open window at most (the engine's sensor limit); an event that would
   * open a window of another group throws a WindowGroupLimitError and changes nothing.
   */
  constructor(spec: WindowSpec, maxGroups = Infinity) {
    this.spec = spec;
    this.#maxGroups = maxGroups;
    const w = spec.window;
    this.#size = w.type === "count" ? w.size : durationMs(w.size);
    this.#slide = w.type === "sliding" ? durationMs(w.slide) : this.#size;
    this.#keepValues = spec.functions.has("p95");
  }

  /**
   * Adds an event at the partition's clock `clock`; closed windows (count windows, or the group's own
   * time passing an end) go to `out`. Returns false when the event has no group (it is left out).
   */
  add(event: SensorEvent, time: number, clock: number, out: ClosedWindow[]): boolean {
    const group = this.spec.groupOf(event);
    if (group === null) return false;
    if (this.spec.window.type === "count") {
      let acc = this.#count.get(group);
      if (acc === undefined) {
        this.#admit(group);
        this.#count.set(group, acc = this.#newAcc(event, time, time));
        this.#opened(group);
      }
      this.#update(acc, event, time);
      if (acc.count >= this.#size) {
        this.#count.delete(group);
        this.#closed(group);
        acc.end = acc.lastT;
        out.push(this.#close(group, acc));
      }
      return true;
    }
    const lateness = this.spec.allowedLatenessMs;
    const groupTime = this.#groupTime.get(group) ?? -Infinity;
    let closedBy = this.watermark > clock ? this.watermark : clock;
    if (groupTime > closedBy) closedBy = groupTime;
    // Window starts are multiples of the slide: every window with start <= time < start + size.
    const lastStart = Math.floor(time / this.#slide) * this.#slide;
    // Checked before anything changes: the newest window is the last to close, so the event opens
    // one if it does not close by then (else it is late for all of them, and only counted so).
    if (!this.#openOf.has(group) && lastStart + this.#size + lateness > closedBy) this.#admit(group);
    let counted = false;
    for (let start = lastStart; start > time - this.#size; start -= this.#slide) {
      const end = start + this.#size;
      if (end + lateness <= closedBy) {
        if (!counted) this.late++;
        counted = true;
        continue;
      }
      let groups = this.#byEnd.get(end);
      if (groups === undefined) {
        this.#byEnd.set(end, groups = new Map());
        this.#insertEnd(end);
      }
      let acc = groups.get(group);
      if (acc === undefined) {
        groups.set(group, acc = this.#newAcc(event, start, end));
        this.#opened(group);
      }
      this.#update(acc, event, time);
    }
    if (time > groupTime) {
      this.#groupTime.set(group, time);
      if (this.#ends.length > 0 && this.#ends[0]! + lateness <= time) this.#closeGroup(group, time, out);
    }
    return true;
  }

  /** Closes one group's windows that its own time has passed. */
  #closeGroup(group: string, time: number, out: ClosedWindow[]): void {
    const lateness = this.spec.allowedLatenessMs;
    let emptied = false;
    for (const end of this.#ends) {
      if (end + lateness > time) break;
      const groups = this.#byEnd.get(end)!;
      const acc = groups.get(group);
      if (acc === undefined) continue;
      groups.delete(group);
      this.#closed(group);
      out.push(this.#close(group, acc));
      if (groups.size === 0) {
        this.#byEnd.delete(end);
        emptied = true;
      }
    }
    if (emptied) this.#ends = this.#ends.filter((end) => this.#byEnd.has(end));
  }

  /** The clock at which the next window closes (Infinity when none is open). */
  nextDue(): number {
    return this.#ends.length > 0 ? this.#ends[0]! + this.spec.allowedLatenessMs : Infinity;
  }

  /** Moves the partition's clock to `time` (never back) and closes every window it passed. */
  advance(time: number, out: ClosedWindow[]): void {
    if (time <= this.watermark) return;
    this.watermark = time;
    const lateness = this.spec.allowedLatenessMs;
    while (this.#ends.length > 0 && this.#ends[0]! + lateness <= time) {
      const end = this.#ends.shift()!;
      const groups = this.#byEnd.get(end)!;
      this.#byEnd.delete(end);
      for (const [group, acc] of groups) {
        this.#closed(group);
        out.push(this.#close(group, acc));
      }
    }
    // A group time the clock has passed by a whole window can no longer make anything late.
    for (const [group, t] of this.#groupTime) {
      if (t + this.#size + lateness <= time) this.#groupTime.delete(group);
    }
  }

  /** Closes every open time window: the end of a replay or of a rule test. */
  flush(out: ClosedWindow[]): void {
    this.advance(Infinity, out);
  }

  /** The open windows of one group, as plain data for the state changelog; null when there are none. */
  exportGroup(
    group: string,
  ): { watermark: number; time?: number; accs: Acc[]; count: Acc | null } | null {
    const accs: Acc[] = [];
    for (const groups of this.#byEnd.values()) {
      const acc = groups.get(group);
      if (acc !== undefined) accs.push(acc);
    }
    const count = this.#count.get(group) ?? null;
    if (accs.length === 0 && count === null) return null;
    const time = this.#groupTime.get(group);
    return time === undefined
      ? { watermark: this.watermark, accs, count }
      : { watermark: this.watermark, time, accs, count };
  }

  /** Groups with an open window. */
  groups(): Set<string> {
    const out = new Set(this.#count.keys());
    for (const groups of this.#byEnd.values()) for (const g of groups.keys()) out.add(g);
    return out;
  }

  /** Forgets a group's open windows (before importing a newer copy). */
  dropGroup(group: string): void {
    this.#openOf.delete(group);
    this.#count.delete(group);
    this.#groupTime.delete(group);
    for (const groups of this.#byEnd.values()) groups.delete(group);
  }

  /** Restores a group exported by `exportGroup` (after a restart or a rebalance). */
  importGroup(
    group: string,
    data: { watermark: number; time?: number; accs: Acc[]; count: Acc | null },
  ): void {
    if (data.watermark > this.watermark) this.watermark = data.watermark;
    if (data.time !== undefined) this.#groupTime.set(group, data.time);
    for (const acc of data.accs) {
      let groups = this.#byEnd.get(acc.end);
      if (groups === undefined) {
        this.#byEnd.set(acc.end, groups = new Map());
        this.#insertEnd(acc.end);
      }
      // Restored whatever the limit: state the engine had is not dropped, only new groups refused.
      if (!groups.has(group)) this.#opened(group);
      groups.set(group, acc);
    }
    if (data.count !== null) {
      if (!this.#count.has(group)) this.#opened(group);
      this.#count.set(group, data.count);
    }
  }

  /** Open windows, for the API and tests. */
  get open(): number {
    let n = this.#count.size;
    for (const g of this.#byEnd.values()) n += g.size;
    return n;
  }

  /** Throws unless `group`, which has no open window, may open one. */
  #admit(group: string): void {
    if (this.#openOf.size < this.#maxGroups) return;
    const shown = JSON.stringify(group.length > 100 ? `${group.slice(0, 100)}…` : group);
    throw new WindowGroupLimitError(
      `The rule has windows open for ${this.#openOf.size} groups, its limit ` +
        `(MAX_SENSORS_PER_PARTITION=${this.#maxGroups}): the event of a new group (${shown}) is left out ` +
        "until some of them close",
    );
  }

  #opened(group: string): void {
    this.#openOf.set(group, (this.#openOf.get(group) ?? 0) + 1);
  }

  #closed(group: string): void {
    const n = (this.#openOf.get(group) ?? 0) - 1;
    if (n > 0) this.#openOf.set(group, n);
    else this.#openOf.delete(group);
  }

  #insertEnd(end: number): void {
    const ends = this.#ends;
    let i = ends.length;
    while (i > 0 && ends[i - 1]! > end) i--;
    ends.splice(i, 0, end);
  }

  #newAcc(e: SensorEvent, start: number, end: number): Acc {
    return {
      start,
      end,
      count: 0,
      sum: 0,
      mean: 0,
      m2: 0,
      min: Infinity,
      max: -Infinity,
      first: e.value,
      firstT: Infinity,
      last: e.value,
      lastT: -Infinity,
      values: this.#keepValues ? [] : null,
      sensor_id: e.sensor_id,
      sensor_type: e.sensor_type,
      unit: e.unit,
      location: e.location ?? null,
    };
  }

  #update(acc: Acc, e: SensorEvent, time: number): void {
    const v = e.value;
    acc.count++;
    acc.sum += v;
    const delta = v - acc.mean;
    acc.mean += delta / acc.count;
    acc.m2 += delta * (v - acc.mean);
    if (v < acc.min) acc.min = v;
    if (v > acc.max) acc.max = v;
    // First and last by event time, so out-of-order events within the window don't swap them.
    if (time < acc.firstT) {
      acc.first = v;
      acc.firstT = time;
    }
    if (time >= acc.lastT) {
      acc.last = v;
      acc.lastT = time;
      acc.sensor_id = e.sensor_id;
      acc.unit = e.unit;
      acc.location = e.location ?? acc.location;
    }
    if (acc.sketch !== undefined) sketchAdd(acc.sketch, v);
    else if (acc.values !== null) {
      if (acc.values.length < P95_EXACT_VALUES) acc.values.push(v);
      else {
        // A changelog of an older release may hold more values than that: they all go in at once.
        const sketch = newSketch();
        for (const x of acc.values) sketchAdd(sketch, x);
        sketchAdd(sketch, v);
        acc.sketch = sketch;
        acc.values = null;
      }
    }
  }

  #close(group: string, acc: Acc): ClosedWindow {
    const seconds = (acc.lastT - acc.firstT) / 1000;
    const aggregate: Record<string, unknown> = {
      // The running mean where the sum overflowed (values near ±1.8e308): Infinity is null in JSON,
      // and an alert on it said "value 0". Otherwise the sum's quotient, as it always was.
      avg: Number.isFinite(acc.sum) ? acc.sum / acc.count : acc.mean,
      min: acc.min,
      max: acc.max,
      count: acc.count,
      sum: acc.sum,
      stddev: acc.count > 0 ? Math.sqrt(acc.m2 / acc.count) : 0,
      first: acc.first,
      last: acc.last,
      rate: seconds > 0 ? (acc.last - acc.first) / seconds : 0,
      group,
      sensor_id: acc.sensor_id,
      sensor_type: acc.sensor_type,
      location: acc.location,
      unit: acc.unit,
      window_start: new Date(acc.start).toISOString(),
      window_end: new Date(acc.end).toISOString(),
    };
    if (acc.sketch !== undefined) {
      aggregate.p95 = sketchQuantile(acc.sketch, 0.95, acc.min, acc.max);
      // Only when the sketch answered: an operator can tell an estimate (within 1%) from the exact
      // nearest rank, as a Prometheus summary's quantiles are known to be estimates.
      aggregate.p95_estimated = true;
    } else if (acc.values !== null) aggregate.p95 = percentile(acc.values, 0.95);
    return {
      group,
      start: acc.start,
      end: acc.end,
      sensor_id: acc.sensor_id,
      sensor_type: acc.sensor_type,
      unit: acc.unit,
      location: acc.location,
      aggregate,
    };
  }
}

/** Nearest-rank percentile. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
}
