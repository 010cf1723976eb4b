import { AlertTracker, type Sample } from "../../src/alerts/lifecycle.ts";
import type { SensorAlert } from "../../src/contract/schemas.ts";
import { decodedEvents, ruleSetOf, T0 } from "./_fixtures.ts";

const rule = ruleSetOf(await Deno.readTextFile(new URL("../../rules/default.yaml", import.meta.url)))
  .byId.get("temperature-out-of-range")!;
const events = decodedEvents(10_000).filter((e) => e.sensor_type === "temperature");
const tracker = new AlertTracker();
const out: SensorAlert[] = [];
const verdict = { threshold: 35, bound: "max" } as const;
let i = 0;

function sample(n: number): Sample {
  const e = events[n % events.length]!;
  return {
    group: e.sensor_id,
    time: T0 + n,
    sensor_id: e.sensor_id,
    sensor_type: e.sensor_type,
    unit: e.unit,
    location: e.location ?? null,
    value: e.value,
    event: e,
    values: {},
  };
}

Deno.bench("AlertTracker.observe(): fire, then resolve (two steps)", { group: "lifecycle" }, () => {
  const s = sample(i++);
  tracker.observe(rule, s, verdict, false, out);
  tracker.observe(rule, s, null, true, out);
  out.length = 0;
});
