/**
 * `robust_zscore`'s window alone (src/rules/sorted_window.ts), this checkout's and another one's
 * (`--before DIR`, e.g. `git archive` of an older commit) interleaved in one process, each round timed
 * in CPU time: 10,000 windows of a 1-minute window each, a value every 10 s, as the fleet bench's
 * sensors. Each event drops what left the window, measures the median and MAD, and adds the value.
 *
 *   deno run --allow-read --allow-env --allow-sys scripts/bench/window_ab.ts --before /tmp/before [--changing]
 *
 * `--changing`: each sensor's value changes at every event (as fleet_ab's `robust_zscore, changing`);
 * else it repeats. Prints each checkout's nanoseconds per event (first quartile, median), twice.
 *
 * @module
 */
import process from "node:process";
import { parseArgs } from "node:util";
import { print } from "../../src/log.ts";

const SENSORS = 10_000;
const EVENTS_PER_ROUND = 50_000;
const OFFSETS = [0, 0.37, -0.21, 0.52, -0.44, 0.13, -0.08, 0.29];

const { values } = parseArgs({
  args: Deno.args,
  options: {
    before: { type: "string" },
    rounds: { type: "string", default: "40" },
    changing: { type: "boolean", default: false },
  },
  strict: true,
});
const here = new URL("../../", import.meta.url).pathname;
const roots = [
  ...(values.before === undefined ? [] : [[`before`, values.before.replace(/\/?$/, "/")]]),
  ["now", here],
];
const value = (sensor: number, k: number) =>
  values.changing
    ? Math.round((20 + (sensor % 50) + OFFSETS[(k + sensor) % OFFSETS.length]!) * 100) / 100
    : 20 + (sensor % 50);

interface Window {
  turn?(time: number, value: number, since: number, max: number): number;
  readonly measuredMedian?: number;
  dropUntil(since: number): void;
  readonly size: number;
  readonly newest: number;
  measure(): number;
  readonly measuredMad: number;
  push(time: number, value: number, max: number): void;
}

/** A round's events over the windows: with `turn` when the checkout has it, as `robust_zscore` does. */
function fleetOf(SortedWindow: new (first: number) => Window): (n: number) => number {
  const windows = Array.from({ length: SENSORS }, () => new SortedWindow(0));
  const turns = typeof windows[0]!.turn === "function";
  let t = 0;
  let i = 0;
  let sum = 0;
  const event = () => {
    const sensor = i % SENSORS;
    const x = value(sensor, Math.floor(i / SENSORS));
    const w = windows[sensor]!;
    i++;
    t += 1;
    let median = NaN;
    const measured = turns ? w.turn!(t, x, t - 60_000, 512) : -1;
    if (measured >= 0) {
      if (measured >= 5) median = w.measuredMedian!;
    } else {
      w.dropUntil(t - 60_000);
      if (w.size >= 5) median = w.measure();
      if (t >= w.newest) w.push(t, x, 512);
    }
    if (!Number.isNaN(median)) sum += (x - median) / (w.measuredMad + 1e-9);
  };
  for (let k = 0; k < 20 * SENSORS; k++) event();
  return (n: number) => {
    for (let k = 0; k < n; k++) event();
    return sum;
  };
}

const cases = new Map<string, (n: number) => number>();
for (const [tag, root] of roots) {
  const { SortedWindow } = await import(`${root}src/rules/sorted_window.ts`);
  cases.set(`${tag}`, fleetOf(SortedWindow));
  cases.set(`${tag}, again`, fleetOf(SortedWindow));
}
const ns = new Map<string, number[]>();
for (let r = 0; r < Number(values.rounds); r++) {
  for (const [name, run] of cases) {
    const from = process.cpuUsage();
    run(EVENTS_PER_ROUND);
    const used = process.cpuUsage(from);
    ns.set(name, [...ns.get(name) ?? [], (used.user + used.system) * 1e3 / EVENTS_PER_ROUND]);
  }
}
const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.floor(q * (xs.length - 1))]!;
for (const [name, xs] of ns) {
  print(
    `${name.padEnd(12)} p25 ${quantile(xs, 0.25).toFixed(1)} ns, median ${quantile(xs, 0.5).toFixed(1)} ns`,
  );
}
