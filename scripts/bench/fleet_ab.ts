/**
 * The fleet bench's anomaly rule sets (tests/bench/fleet_rules_bench.ts) in one process, this
 * checkout and another one (`--before DIR`, e.g. `git archive` of an older commit) interleaved, each
 * round timed in CPU time: on a shared machine `deno bench` runs its benches one after the other,
 * so the load changes under them (ratios of one run spread 0.8x-3.3x at load 6-9), while rounds
 * interleaved in one process see the same load.
 *
 *   deno run --allow-read --allow-env --allow-sys scripts/bench/fleet_ab.ts --before /tmp/before [--rounds 30]
 *
 * Prints per rule set the nanoseconds per event (fastest round, first quartile, median) and the
 * ratio of the first quartiles to the first checkout's plain threshold rules'.
 *
 * @module
 */
import process from "node:process";
import { parseArgs } from "node:util";
import { print } from "../../src/log.ts";

const SENSORS = 10_000;
const EVENTS_PER_ROUND = 50_000;

const { values } = parseArgs({
  args: Deno.args,
  options: { before: { type: "string" }, rounds: { type: "string", default: "30" } },
  strict: true,
});
const here = new URL("../../", import.meta.url).pathname;
const roots = [
  ...(values.before === undefined ? [] : [[`before`, values.before.replace(/\/?$/, "/")]]),
  ["now", here],
];

/** One rule per sensor type, as the fleet bench writes them. */
const RULES: Record<string, (type: string) => string> = {
  zscore: (t) =>
    `  - { id: z-${t}, sensor_type: ${t}, condition: { ">": [{ zscore: [value, 1m] }, 4] }, priority: low }\n`,
  robust_zscore: (t) =>
    `  - { id: rz-${t}, sensor_type: ${t}, condition: { ">": [{ robust_zscore: [value, 1m] }, 1000000] }, priority: low }\n`,
};
const PLAIN = (t: string) =>
  `  - { id: th-${t}, sensor_type: ${t}, threshold: { min: -1000, max: 100000 }, priority: low }\n`;

const cases = new Map<string, (n: number) => void>();
for (const [tag, root] of roots) {
  const { emptyOutput, RuleEngine } = await import(`${root}src/rules/engine.ts`);
  const { parseRuleFile } = await import(`${root}src/rules/load.ts`);
  const { RuleSet } = await import(`${root}src/rules/ruleset.ts`);
  const { SENSOR_TYPES } = await import(`${root}src/contract/schemas.ts`);
  const { decodedEvents, T0 } = await import(`${root}tests/bench/_fixtures.ts`);
  const events = decodedEvents(SENSORS);
  const engineWith = (rule: (type: string) => string) => {
    const r = parseRuleFile("bench.yaml", `rules:\n${SENSOR_TYPES.map(rule).join("")}`);
    const engine = new RuleEngine();
    engine.setRules(new RuleSet(r.rules));
    const out = emptyOutput();
    let t = T0;
    // Ten rounds of the fleet, as the fleet bench: every baseline past its warm-up.
    for (let round = 0; round < 10; round++) for (const e of events) engine.onEvent(e, t += 1, out);
    let i = 0;
    return (n: number) => {
      for (let k = 0; k < n; k++) {
        engine.onEvent(events[i++ % SENSORS], t += 1, out);
        out.alerts.length = 0;
      }
    };
  };
  // Each checkout runs threshold rules too: the engine's code of one module sees every rule set
  // of that module (an engine module that ran only anomaly rules was 20% faster).
  cases.set(`plain threshold (${tag})`, engineWith(PLAIN));
  for (const [name, rule] of Object.entries(RULES)) cases.set(`${name} (${tag})`, engineWith(rule));
}

const rounds = Number(values.rounds);
const ns = new Map<string, number[]>();
for (let r = 0; r < rounds; r++) {
  for (const [name, run] of cases) {
    const from = process.cpuUsage();
    run(EVENTS_PER_ROUND);
    const used = process.cpuUsage(from);
    ns.set(name, [...ns.get(name) ?? [], (used.user + used.system) * 1e3 / EVENTS_PER_ROUND]);
  }
}
const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.floor(q * (xs.length - 1))]!;
// The baseline is the first checkout's threshold rules: with the same code as both checkouts, the
// second one's threshold rules took 15% longer (195-200 against 224-229 ns) and its anomaly rules
// the same time (robust_zscore 323-330 against 308-324 ns).
const plain = quantile([...ns.values()][0]!, 0.25);
for (const [name, xs] of ns) {
  print(
    `${name.padEnd(28)} fastest ${quantile(xs, 0).toFixed(0)} ns, p25 ${quantile(xs, 0.25).toFixed(0)} ns, ` +
      `median ${quantile(xs, 0.5).toFixed(0)} ns: ${(quantile(xs, 0.25) / plain).toFixed(2)}x`,
  );
}
