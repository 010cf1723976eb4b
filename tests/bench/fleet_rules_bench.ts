/**
 * Per-event cost of the fleet constructs for 10,000 sensors, each against the same number of plain
 * threshold rules (one per sensor type): per-sensor limits (a table with an entry for every sensor),
 * anomaly operations (a baseline per sensor), and sequences. The budget: limits and anomaly
 * rules within 1.5x of the plain threshold rules.
 *
 *   deno bench --allow-read=. --allow-env=LOG_LEVEL,LOG_STREAM,LOG_TOKENS,NO_COLOR tests/bench/fleet_rules_bench.ts
 */
import { SENSOR_TYPES } from "../../src/contract/schemas.ts";
import { emptyOutput, RuleEngine } from "../../src/rules/engine.ts";
import { parseRuleFile } from "../../src/rules/load.ts";
import { Limits } from "../../src/rules/limits.ts";
import { RuleSet } from "../../src/rules/ruleset.ts";
import { decodedEvents, T0 } from "./_fixtures.ts";

const SENSORS = 10_000;
/**
 * Fixed, long runs after a long warm-up: with the default, the first bench of the file also paid for
 * the collection of every bench's setup garbage (its average 2.5x its p75).
 */
const RUNS = { warmup: 200_000, n: 1_000_000 };
const events = decodedEvents(SENSORS);

function ruleSet(rules: string, limits = ""): RuleSet {
  const r = parseRuleFile("bench.yaml", `rules:\n${rules}${limits}`);
  if (r.problems.length > 0) throw new Error(r.problems.map((p) => p.message).join("; "));
  return new RuleSet(r.rules, [], new Limits(r.limits ?? []));
}

/** One rule per sensor type, written by `rule(type)`. */
const perType = (rule: (type: string) => string) => SENSOR_TYPES.map(rule).join("");

/**
 * The engine over the fleet at 1,000 events/s (each sensor every 10 s), after ten rounds: caches warm
 * and every baseline past its warm-up (1-minute half-lives and windows), so each event gets a verdict.
 */
function engineWith(set: RuleSet): (b: Deno.BenchContext) => void {
  const engine = new RuleEngine();
  engine.setRules(set);
  const out = emptyOutput();
  let t = T0;
  for (let round = 0; round < 10; round++) for (const e of events) engine.onEvent(e, t += 1, out);
  let i = 0;
  return () => {
    engine.onEvent(events[i++ % SENSORS]!, t += 1, out);
    out.alerts.length = 0;
  };
}

const everySensor = events.map((e) => `      "${e.sensor_id}": { min: -1000, max: 100000 }\n`).join("");

Deno.bench(
  "plain threshold rules (one per type)",
  { group: "fleet", baseline: true, ...RUNS },
  engineWith(
    ruleSet(
      perType((t) =>
        `  - { id: th-${t}, sensor_type: ${t}, threshold: { min: -1000, max: 100000 }, priority: low }\n`
      ),
    ),
  ),
);
Deno.bench(
  "per-sensor limits (one rule per type, 10,000 sensor_id entries)",
  { group: "fleet", ...RUNS },
  engineWith(ruleSet(
    perType((t) => `  - { id: lim-${t}, sensor_type: ${t}, limits: band, priority: low }\n`),
    `limits:\n  band:\n    default: { min: -1000, max: 100000 }\n    sensor_id:\n${everySensor}`,
  )),
);
Deno.bench(
  "zscore rules (one per type, a baseline per sensor)",
  { group: "fleet", ...RUNS },
  engineWith(
    ruleSet(
      perType((t) =>
        `  - { id: z-${t}, sensor_type: ${t}, condition: { ">": [{ zscore: [value, 1m] }, 4] }, priority: low }\n`
      ),
    ),
  ),
);
Deno.bench(
  "rate_of_change rules (one per type)",
  { group: "fleet", ...RUNS },
  engineWith(
    ruleSet(
      perType((t) =>
        `  - { id: r-${t}, sensor_type: ${t}, condition: { ">": [{ rate_of_change: [value, 1m] }, 1000000] }, priority: low }\n`
      ),
    ),
  ),
);
Deno.bench(
  "robust_zscore rules (one per type, 1-minute window: 6 values per sensor)",
  { group: "fleet", ...RUNS },
  engineWith(
    ruleSet(
      perType((t) =>
        `  - { id: rz-${t}, sensor_type: ${t}, condition: { ">": [{ robust_zscore: [value, 1m] }, 1000000] }, priority: low }\n`
      ),
    ),
  ),
);
Deno.bench(
  "sequence rules (one per type, A then B by location)",
  { group: "fleet", ...RUNS },
  engineWith(
    ruleSet(perType((t) =>
      `  - id: s-${t}\n    sensor_type: ${t}\n    group_by: location\n    sequence:\n` +
      `      first: { condition: { ">": [{ var: value }, 100000] } }\n` +
      `      then: { condition: { "<": [{ var: value }, -1000] } }\n      within: 5m\n    priority: low\n`
    )),
  ),
);
Deno.bench(
  "sequence rule, every event an A: 20 groups of up to 10,000 partial matches (sizes kept)",
  { group: "fleet", ...RUNS },
  engineWith(
    ruleSet(
      `  - id: s-all\n    group_by: location\n    sequence:\n` +
        `      first: { condition: { ">": [{ var: value }, -1000000] } }\n` +
        `      then: { condition: { "<": [{ var: value }, -1000000] } }\n` +
        `      within: 1h\n      max_open: 10000\n    priority: low\n`,
    ),
  ),
);
