/**
 * What S silences cost the notifier stage: applying their records (one batch, as the topic's follower
 * hands them) while H alerts are held, and then `silencing()` per alert.
 *
 * Each silence has 32 matchers: 31 regexes `.*(a|f|e|t|y).*` on `labels.team` that hold, and a last
 * one that fails (the reviewer's input). `--last sensor` makes it `sensor_id=<another sensor>` (what a
 * silence usually names, which the store indexes); `--last regex` a regex that fails (nothing to
 * index); `--distinct` gives each regex a text of its own (nothing shared to reuse). `--patterns`
 * and `--max` set the limits (default 2,000 distinct patterns, 100,000 silences).
 *
 *   deno run --allow-read --allow-write --allow-env scripts/bench/silences_cost.ts --silences 1000 --held 2000
 *
 * @module
 */
import type { SensorAlert } from "../../src/contract/schemas.ts";
import type { Logger } from "../../src/log.ts";
import { SilenceGate } from "../../src/notifiers/silences/gate.ts";
import { type SilenceLog, Silences } from "../../src/notifiers/silences/store.ts";

const flag = (name: string, fallback: string) => {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Deno.args[i + 1] : fallback;
};
const args = {
  silences: flag("silences", "1000"),
  held: flag("held", "0"),
  alerts: flag("alerts", "50"),
  last: flag("last", "regex"),
  max: flag("max", "100000"),
  patterns: flag("patterns", "2000"),
  distinct: Deno.args.includes("--distinct"),
};
const S = Number(args.silences);
const H = Number(args.held);
const A = Number(args.alerts);

const quiet: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  enabled: () => false,
  child: () => quiet,
};

function record(i: number): Record<string, unknown> {
  const now = Date.now();
  const matchers = Array.from({ length: 31 }, (_, j) => ({
    name: "labels.team",
    value: args.distinct ? `.*(a|f|e|t|y).*|x${i}-${j}` : ".*(a|f|e|t|y).*",
    is_regex: true,
    is_equal: true,
  }));
  matchers.push(
    args.last === "sensor"
      ? { name: "sensor_id", value: `other-${i}`, is_regex: false, is_equal: true }
      : { name: "labels.team", value: `nobody-${i}.*`, is_regex: true, is_equal: true },
  );
  return {
    id: `s-${i}`,
    matchers,
    starts_at: new Date(now - 1000).toISOString(),
    ends_at: "2999-01-01T00:00:00.000Z",
    created_by: "bench",
    comment: "cost",
    updated_at: new Date(now).toISOString(),
  };
}

/** Hands records over as the topic's follower does: a fetched batch in one synchronous run. */
let apply: (id: string, record: unknown) => void = () => {};
const log: SilenceLog = {
  start(a) {
    apply = a;
    return Promise.resolve();
  },
  write: () => Promise.resolve(),
  close: () => Promise.resolve(),
};

function alert(i: number): SensorAlert {
  return {
    alert_id: `alert-${i}`,
    sensor_id: `co2-${i}`,
    sensor_type: "co2",
    priority: "critical",
    message: "m",
    value: 1201,
    threshold: 1000,
    timestamp: "2026-11-25T21:00:00.000Z",
    acknowledged: false,
    rule_id: "co2-critical",
    state: "firing",
    location: "Building A",
    unit: "ppm",
    labels: { team: "safety" },
  } as unknown as SensorAlert;
}

const silences = new Silences({
  log,
  logger: quiet,
  maxSilences: Number(args.max),
  maxPatterns: Number(args.patterns),
});
await silences.start();
const gate = new SilenceGate(silences, quiet);
gate.attach(() => Promise.resolve());
// Waits for the gate's recheck where it has one to wait for (after the fix).
const settled = () => (gate as unknown as { settled?: () => Promise<void> }).settled?.call(gate);
// The held alerts are held by a silence of their own, so each recheck finds them still held.
await silences.create({
  matchers: [{ name: "rule_id", value: "co2-critical", is_regex: false, is_equal: true }],
  ends_at: "2999-01-01T00:00:00.000Z",
  created_by: "bench",
  comment: "holds",
});
for (let i = 0; i < H; i++) gate.hold(alert(i));
await settled();

// The longest the event loop went without a turn while the held alerts were rechecked.
let maxTurnMs = 0;
let last = performance.now();
const ticker = setInterval(() => {
  const at = performance.now();
  maxTurnMs = Math.max(maxTurnMs, at - last);
  last = at;
}, 0);
let t = performance.now();
last = t;
for (let i = 0; i < S; i++) apply(`s-${i}`, record(i));
// From here on the recheck: its chunks are what the loop waits for.
maxTurnMs = 0;
last = performance.now();
await new Promise((resolve) => setTimeout(resolve, 0));
await settled();
const applyMs = performance.now() - t;
maxTurnMs = Math.max(maxTurnMs, performance.now() - last);
clearInterval(ticker);

t = performance.now();
for (let i = 0; i < A; i++) silences.silencing(alert(H + i));
const perAlertMs = (performance.now() - t) / A;
await gate.close();
await silences.close();
// deno-lint-ignore no-console
console.log(JSON.stringify({
  silences: S,
  last: args.last,
  distinct: args.distinct,
  kept: silences.list().length - 1,
  refused: silences.refused,
  apply_ms: Math.round(applyMs),
  longest_recheck_turn_ms: Math.round(maxTurnMs),
  silencing_ms_per_alert: Number(perAlertMs.toFixed(3)),
  held: H,
}));
