/**
 * `POST /api/whatif` with a rule written to be costly per event: the what-if's time limit and its
 * turns of the event loop must hold inside one event's evaluation, not only between chunks of events.
 */
import assert from "node:assert/strict";
import { testHttpServer } from "../helpers/http.ts";
import { EventHistory } from "../../src/backtest/whatif.ts";
import type { SensorEvent } from "../../src/contract/schemas.ts";

const T0 = Date.UTC(2026, 0, 1);

function history(events: number): EventHistory {
  const h = new EventHistory({ maxEvents: 1000 });
  for (let s = 0; s < events; s++) {
    const event = {
      event_id: `e-${s}`,
      sensor_id: `temp-${s % 3}`,
      sensor_type: "temperature",
      value: 20 + s,
      unit: "°C",
      timestamp: new Date(T0 + s * 1000).toISOString(),
      location: "hall",
      metadata: {},
      schema_version: 1,
    } satisfies SensorEvent;
    h.onEvent({ event, time: T0 + s * 1000, key: "" }, {
      topic: "t",
      partition: 0,
      offset: null,
      key: null,
      value: null,
    });
  }
  return h;
}

/** Nested `all` over a literal list: `n`^3 steps per event from a condition of about 6n bytes. */
function costlyRule(n: number): string {
  const list = JSON.stringify(Array(n).fill(1));
  const condition = `{"all": [${list}, {"all": [${list}, {"all": [${list}, {"==": [1, 1]}]}]}]}`;
  return `id: costly\nsensor_type: temperature\ncondition: ${condition}\npriority: high\n`;
}

/** The longest gap between ticks of a 10 ms timer while `run` runs: how long the event loop was held. */
async function longestStall<T>(run: () => Promise<T>): Promise<{ result: T; stallMs: number }> {
  let last = performance.now();
  let stallMs = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    stallMs = Math.max(stallMs, now - last);
    last = now;
  }, 10);
  try {
    const result = await run();
    stallMs = Math.max(stallMs, performance.now() - last);
    return { result, stallMs };
  } finally {
    clearInterval(timer);
  }
}

/**
 * No loop in it but `reduce`s of 17 steps: each doubles `[acc, acc]` into a DAG of 131,072 leaves
 * (within the budget, which weighs what is built), and each `+` turns one into text, ~45 ms: 300 of
 * them (32 KB) were 8-13 s for one event.
 */
function textRule(): string {
  const dag = { reduce: [Array(17).fill(1), [{ var: "accumulator" }, { var: "accumulator" }], ["x"]] };
  const condition = { ">": [{ "+": Array(300).fill({ "+": [dag] }) }, 0] };
  return `id: costly\nsensor_type: temperature\ncondition: ${JSON.stringify(condition)}\npriority: high\n`;
}

/**
 * A `map` step over one such DAG whose body is an array written with 20 references to it: one `+`
 * over that array turned 20 DAGs into text at once, 1.0 s (2,000 references: ~90 s) in one step.
 */
function arrayRule(): string {
  const dag = { reduce: [Array(17).fill(1), [{ var: "accumulator" }, { var: "accumulator" }], ["x"]] };
  const refs = { map: [[dag], { "+": [Array(20).fill({ var: "" })] }] };
  const condition = { some: [refs, { ">": [{ var: "" }, 0] }] };
  return `id: costly\nsensor_type: temperature\ncondition: ${JSON.stringify(condition)}\npriority: high\n`;
}

for (
  const [what, rule] of [
    ["nested loops", costlyRule(300)],
    ["text of large values", textRule()],
    ["an array of references", arrayRule()],
  ] as const
) {
  Deno.test(`POST /api/whatif with a costly condition (${what}) holds the event loop for at most a turn`, async () => {
    const { status, body, stallMs } = await runWhatIf(rule);
    assert.equal(status, 200, JSON.stringify(body));
    assert.ok(stallMs < 1500, `the event loop was held for ${Math.round(stallMs)} ms in one piece`);
  });
}

async function runWhatIf(rule: string) {
  const http = await testHttpServer({
    mode: "embedded",
    history: history(20),
  });
  try {
    const { result, stallMs } = await longestStall(async () => {
      const res = await fetch(`${http.url}/api/whatif`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ rule }),
      });
      return { status: res.status, body: await res.json() };
    });
    return { ...result, stallMs };
  } finally {
    await http.close();
  }
}

Deno.test("POST /api/whatif stopped inside a costly condition says timed_out", async () => {
  // 1.8 KB of condition, 27 million steps per event: 0.3-0.8 s an event on the 2-core machine, 5.4 s
  // for the 20 events, all in one chunk of the what-if (it yields only every 100 events).
  const { status, body } = await runWhatIf(costlyRule(300));
  assert.equal(status, 200, JSON.stringify(body));
  assert.equal(body.history.timed_out, true, "the what-if says it was stopped");
});
