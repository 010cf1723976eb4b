/**
 * How long one partition's engine holds the event loop for its deadman rules, at the stats limit
 * (100,000 sensors): the shipped `sensor-silent` rule (`absent_for: 5m`), the live stream's clock
 * (events stamped half a second before the wall clock, one tick a second), for `--minutes` of
 * simulated time after the first five (the startup grace).
 *
 * - `healthy`: every sensor speaks once a minute (1,666 events a second);
 * - `outage`: every sensor spoke in the first minute, then 90% went silent (their alerts fire at
 *   minute 5 and stay firing) while the other 10% go on speaking once a minute.
 *
 * Each call (`onEvent` of one event, `tick`) is timed alone; printed per scenario: the ticks' median
 * and 99th percentile, the longest call (and from minute 7, once the outage's alerts have fired: an
 * event moves the clock too, and looks when a deadline passed), the calls of 10 ms or more (each with
 * `--verbose`), the alerts (the same in both
 * checkouts, or the change is wrong) and the changelog records. `--checkpoint` tracks state changes
 * as exactly-once does, and a tick's time includes taking them and serialising them for the changelog
 * (the flush of src/state/exactly_once.ts does both in one synchronous run). `--before DIR` (e.g. a
 * `git archive` of an older commit) runs that checkout's engine first, in the same process.
 *
 *   deno run --allow-read --allow-env --allow-sys scripts/bench/deadman_tick.ts --checkpoint --before /tmp/before
 *
 * @module
 */
import { parseArgs } from "node:util";
import { print } from "../../src/log.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    before: { type: "string" },
    sensors: { type: "string", default: "100000" },
    minutes: { type: "string", default: "15" },
    scenario: { type: "string", multiple: true },
    checkpoint: { type: "boolean", default: false },
    verbose: { type: "boolean", default: false },
  },
  strict: true,
});
const N = Number(values.sensors);
const MINUTES = Number(values.minutes);
const T0 = Date.UTC(2026, 0, 1);
const here = new URL("../../", import.meta.url).pathname;
const roots: [string, string][] = [
  ...(values.before === undefined
    ? []
    : [["before", values.before.replace(/\/?$/, "/")] as [string, string]]),
  ["now", here],
];
const RULES = await Deno.readTextFile(`${here}rules/deadman.yaml`);

/** Which sensors speak in the second `s` after the first minute (each once a minute, spread out). */
const SCENARIOS: Record<string, (i: number) => boolean> = {
  healthy: () => true,
  outage: (i) => i % 10 === 0,
};

function event(i: number) {
  return {
    event_id: `e-${i}`,
    sensor_id: `sensor-${i}`,
    sensor_type: "temperature",
    value: 21,
    unit: "celsius",
    timestamp: "",
    location: null,
    metadata: {},
    schema_version: 1,
  };
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
}

for (const scenario of values.scenario ?? Object.keys(SCENARIOS)) {
  const speaks = SCENARIOS[scenario];
  if (speaks === undefined) throw new TypeError(`Unknown scenario "${scenario}"`);
  for (const [tag, root] of roots) {
    const { emptyOutput, RuleEngine } = await import(`${root}src/rules/engine.ts`);
    const { parseRuleFile } = await import(`${root}src/rules/load.ts`);
    const { RuleSet } = await import(`${root}src/rules/ruleset.ts`);
    const { changelogRecords } = await import(`${root}src/state/format.ts`);
    const parsed = parseRuleFile("deadman.yaml", RULES);
    const engine = new RuleEngine({ maxSensors: N });
    engine.setRules(new RuleSet(parsed.rules));
    if (values.checkpoint) engine.trackChanges();
    let records = 0;
    const checkpoint = () => {
      if (values.checkpoint) records += changelogRecords("state", 0, engine.takeChanges(), null).length;
    };
    const out = emptyOutput();
    const events = Array.from({ length: N }, (_, i) => event(i));
    let alerts = 0;
    for (let i = 0; i < N; i++) {
      const wall = T0 + Math.floor((i * 60_000) / N);
      engine.onEvent(events[i], wall - 500, out, wall);
    }
    checkpoint();
    records = 0;
    const perSecond = Math.ceil(N / 60);
    const ticks: number[] = [];
    let longest = 0;
    let eventMs = 0;
    let eventCount = 0;
    /** The longest call from minute 7, once the outage's alerts have fired. */
    let settled = 0;
    let slow = 0;
    const slowest: string[] = [];
    let second = 0;
    const time = (f: () => void, what: string) => {
      const t = performance.now();
      f();
      const ms = performance.now() - t;
      if (ms > longest) longest = ms;
      if (second >= 420 && ms > settled) settled = ms;
      if (ms >= 10) {
        slow++;
        if (Deno.args.includes("--verbose")) slowest.push(`${what}@${second}s ${ms.toFixed(1)}`);
      }
      return ms;
    };
    for (let s = 60; s < (5 + MINUTES) * 60; s++) {
      const wall = T0 + s * 1000;
      second = s;
      const first = (s % 60) * perSecond;
      for (let i = first; i < Math.min(N, first + perSecond); i++) {
        if (!speaks(i)) continue;
        eventMs += time(() => engine.onEvent(events[i], wall - 500, out, wall), "event");
        eventCount++;
      }
      checkpoint();
      ticks.push(time(() => {
        engine.tick(out, wall);
        checkpoint();
      }, "tick"));
      alerts += out.alerts.length;
      out.alerts.length = 0;
    }
    ticks.sort((a, b) => a - b);
    print(
      `${scenario.padEnd(8)} ${tag.padEnd(6)} ticks: median ${quantile(ticks, 0.5).toFixed(3)} ms, ` +
        `p99 ${quantile(ticks, 0.99).toFixed(2)} ms; longest call ${longest.toFixed(1)} ms ` +
        `(from minute 7: ${settled.toFixed(1)} ms), ` +
        `calls >= 10 ms: ${slow}; ${(eventMs * 1e6 / eventCount).toFixed(0)} ns per event; alerts ${alerts}` +
        (values.checkpoint ? `, changelog records ${records}` : ""),
    );
    if (slowest.length > 0) print(`  ${slowest.join(", ")}`);
  }
}
