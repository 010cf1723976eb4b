import assert from "node:assert/strict";
import { parseAlertFilter } from "../../src/http/api.ts";

Deno.test("parseAlertFilter() reads priorities and state", () => {
  const f = parseAlertFilter(new URLSearchParams("priority=high,critical&state=firing"));
  assert.deepEqual([...f.priorities!], ["high", "critical"]);
  assert.equal(f.state, "firing");
  assert.deepEqual(parseAlertFilter(new URLSearchParams("")), { priorities: null, state: null });
});

Deno.test("parseAlertFilter() names a wrong value", () => {
  assert.throws(
    () => parseAlertFilter(new URLSearchParams("priority=urgent")),
    new TypeError('"priority" must be one of low, normal, high, critical, got "urgent"'),
  );
  assert.throws(
    () => parseAlertFilter(new URLSearchParams("state=open")),
    new TypeError(
      '"state" must be one of firing, resolved, acknowledged, silenced, inhibited, held, got "open"',
    ),
  );
});
