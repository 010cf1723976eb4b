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
 * ratio of the first quartiles to the first checkout's plain threshold rules'. Each of the fleet
 * bench's sensors repeats its value at every event; `robust_zscore, changing` runs the same rules
 * over events whose value changes at every event of a sensor (see `changingEvents`).
 *
 * Which checkout comes first changes its figures by more than a change of 10%: the first one's
 * repeating robust_zscore ran faster and its changing one slower (41b5050 against f74f537, seven
 * runs in each order, load 3-6: repeating values 4-27 ns slower per event when second, 26-72 ns faster
 * when first). Run it both ways (copy this script into the other checkout and run it there with
 * `--before` this one) and take the mean of the two orders.
 *
 * @module
 */
import process from "node:process";
import { parseArgs } from "node:util";
import { print } from "../../src/log.ts";

const SENSORS = 10_000;
const EVENTS_PER_ROUND = 50_000;
/** Distinct moves of a value, at least 0.05 apart, in no order. */
const OFFSETS = [0, 0.37, -0.21, 0.52, -0.44, 0.13, -0.08, 0.29];

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
  const { decodedEvents, encodedEvents, T0 } = await import(`${root}tests/bench/_fixtures.ts`);
  const { decodeEvent } = await import(`${root}src/decode/decode.ts`);
  const events = decodedEvents(SENSORS);
  const changing = changingEvents(encodedEvents(SENSORS), decodeEvent);
  const engineWith = (rule: (type: string) => string, stream: unknown[] = events) => {
    const r = parseRuleFile("bench.yaml", `rules:\n${SENSOR_TYPES.map(rule).join("")}`);
    const engine = new RuleEngine();
    engine.setRules(new RuleSet(r.rules));
    const out = emptyOutput();
    let t = T0;
    // Ten rounds of the fleet, as the fleet bench: every baseline past its warm-up.
    let i = 0;
    for (let k = 0; k < 10 * SENSORS; k++) engine.onEvent(stream[i++ % stream.length], t += 1, out);
    return (n: number) => {
      for (let k = 0; k < n; k++) {
        engine.onEvent(stream[i++ % stream.length], t += 1, out);
        out.alerts.length = 0;
      }
    };
  };
  // Each checkout runs threshold rules too: the engine's code of one module sees every rule set
  // of that module (an engine module that ran only anomaly rules was 20% faster).
  cases.set(`plain threshold (${tag})`, engineWith(PLAIN));
  for (const [name, rule] of Object.entries(RULES)) cases.set(`${name} (${tag})`, engineWith(rule));
  cases.set(`robust_zscore, changing (${tag})`, engineWith(RULES.robust_zscore!, changing));
}

/**
 * The fleet's events, `OFFSETS.length` times over, each time each sensor's value moved by the next of
 * `OFFSETS` (from a place of its own in them) and rounded to the fixtures' 2 decimals: a sensor's
 * value differs from the one before it and from the one that leaves its 1-minute window (6 events
 * before): no event of a sensor repeats a value of its window. Decoded as the fixtures are,
 * so the events have the same shape.
 */
function changingEvents(
  encoded: string[],
  decode: (text: string, key: null) => { ok: boolean; value?: { event: unknown }; error?: string },
): unknown[] {
  const out: unknown[] = [];
  for (let round = 0; round < OFFSETS.length; round++) {
    encoded.forEach((text, i) => {
      const e = JSON.parse(text);
      e.value = Math.round((e.value + OFFSETS[(round + i) % OFFSETS.length]!) * 100) / 100;
      const r = decode(JSON.stringify(e), null);
      if (!r.ok) throw new Error(r.error);
      out.push(r.value!.event);
    });
  }
  return out;
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
    `${name.padEnd(34)} fastest ${quantile(xs, 0).toFixed(0)} ns, p25 ${quantile(xs, 0.25).toFixed(0)} ns, ` +
      `median ${quantile(xs, 0.5).toFixed(0)} ns: ${(quantile(xs, 0.25) / plain).toFixed(2)}x`,
  );
}
