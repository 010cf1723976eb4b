import { WindowState } from "../../src/rules/windows.ts";
import type { ClosedWindow } from "../../src/rules/windows.ts";
import { decodedEvents, ruleSetOf, T0 } from "./_fixtures.ts";

const rule = ruleSetOf(await Deno.readTextFile(new URL("../../rules/aggregates.yaml", import.meta.url)))
  .rules[0]!;
const events = decodedEvents(10_000);
const state = new WindowState(rule.window!);
const closed: ClosedWindow[] = [];
let i = 0;

// 10,000 groups, time moving 1 ms per event: a 5 minute window closes every 300,000 events.
Deno.bench("WindowState.add(): 5 min tumbling window, 10,000 sensors", () => {
  // As the engine drives it: the partition's clock is the event's time, and closes windows when due.
  state.add(events[i % events.length]!, T0 + i, T0 + i, closed);
  if (state.nextDue() <= T0 + i) state.advance(T0 + i, closed);
  i++;
  closed.length = 0;
});
