/**
 * Deadman timers queued by due time against the walk of every sensor at every look they replaced
 * (`RuleEngine`'s `deadmanWalk`; until the queue was kept, against the whole engine of fb1781c): random streams of events (late, ahead, of another type),
 * ticks, acknowledgements, reloads, restarts from the changelog and sensors leaving the partition give
 * the same alerts at the same times, and the same changelog once compacted (the walk wrote an
 * unchanged episode again at every look; the queue writes what changed).
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import type { SensorAlert } from "../../src/contract/schemas.ts";
import type { StateChange } from "../../src/rules/changes.ts";
import { emptyOutput, RuleEngine } from "../../src/rules/engine.ts";
import type { RuleSet } from "../../src/rules/ruleset.ts";
import { ev, ruleSet, T0 } from "../helpers/engine.ts";
import { checkProperty } from "../helpers/property.ts";

interface Timing {
  absent: string;
  grace: string;
  for: string;
  clearFor: string;
  repeat: string | null;
  flapping: boolean;
  escalate: boolean;
}

const timing: fc.Arbitrary<Timing> = fc.record({
  absent: fc.constantFrom("10s", "30s", "1m"),
  grace: fc.constantFrom("0s", "20s"),
  for: fc.constantFrom("0s", "15s"),
  clearFor: fc.constantFrom("0s", "10s"),
  repeat: fc.constantFrom(null, "20s", "2m"),
  flapping: fc.boolean(),
  escalate: fc.boolean(),
});

/** Two deadman rules (one of every temperature sensor, one listing sensors) and a window rule. */
function rules(t: Timing, listed: boolean): RuleSet {
  return ruleSet(`rules:
  - id: silent
    sensor_type: temperature
    absent_for: ${t.absent}
    startup_grace: ${t.grace}
    for: ${t.for}
    clear_for: ${t.clearFor}
    priority: normal
${t.repeat === null ? "" : `    repeat_interval: ${t.repeat}\n`}${
    t.flapping ? "    flapping: { window: 2m, max_transitions: 2 }\n" : ""
  }${t.escalate ? "    escalate: [{ after: 40s, priority: high }]\n" : ""}${
    listed
      ? `  - id: listed
    sensor_type: humidity
    sensor_id: [s0, s1, ghost]
    absent_for: 20s
    startup_grace: 0s
    priority: low
`
      : ""
  }  - id: avg
    sensor_type: temperature
    window: { type: tumbling, size: 30s }
    threshold: { max: 25 }
    priority: low
`);
}

type Op =
  | { kind: "event"; sensor: number; humidity: boolean; value: number; dt: number; skew: number }
  | { kind: "tick"; dt: number }
  | { kind: "ack"; pick: number }
  | { kind: "reload"; variant: number }
  | { kind: "restart" }
  | { kind: "release"; mask: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({
      kind: fc.constant("event" as const),
      sensor: fc.integer({ min: 0, max: 5 }),
      humidity: fc.boolean(),
      value: fc.constantFrom(20, 30),
      dt: fc.integer({ min: 0, max: 20_000 }),
      skew: fc.constantFrom(0, 0, 0, -500, -45_000, 2_000),
    }),
  },
  {
    weight: 6,
    arbitrary: fc.record({ kind: fc.constant("tick" as const), dt: fc.integer({ min: 0, max: 30_000 }) }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("ack" as const), pick: fc.nat() }) },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant("reload" as const), variant: fc.integer({ min: 0, max: 2 }) }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("restart" as const) }) },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant("release" as const), mask: fc.integer({ min: 0, max: 63 }) }),
  },
);

type Engine = RuleEngine;

/** What may differ between two runs of the same input: the wall clock when an alert was made. */
function plain(value: unknown): string {
  return JSON.stringify(value, (k, v) => (k === "raised_at" || k === "acknowledged_at" ? undefined : v));
}

/** The changelog as compaction keeps it: the newest value per key. */
function fold(log: Map<string, string>, changes: StateChange[]): void {
  for (const c of changes) log.set(`${c.kind}\u0000${c.rule}\u0000${c.group}`, plain(c.value));
}

function changelog(log: Map<string, string>): StateChange[] {
  return [...log].map(([key, value]) => {
    const [kind, rule, group] = key.split("\u0000");
    return { kind, rule, group, value: JSON.parse(value) } as StateChange;
  });
}

Deno.test("deadman timers queued by due time give the alerts and changelog of the walk of every sensor", () => {
  checkProperty(
    fc.property(
      timing,
      timing,
      fc.boolean(),
      fc.array(op, { minLength: 1, maxLength: 80 }),
      (a, b, listed, ops) => {
        const sets = [rules(a, listed), rules(b, listed), rules(a, !listed)];
        let current = sets[0]!;
        const make = <E extends Engine>(engine: E): E => {
          engine.trackChanges();
          engine.setRules(current);
          return engine;
        };
        let queue = make(new RuleEngine());
        let walk = make(new RuleEngine({ deadmanWalk: true }));
        const logs = [new Map<string, string>(), new Map<string, string>()];
        let wall = T0;
        const step = (f: (e: Engine, out: ReturnType<typeof emptyOutput>) => void, what: string) => {
          const outs = [queue, walk].map((e) => {
            const out = emptyOutput();
            f(e, out);
            return out;
          });
          const [q, w] = outs.map((o) => o.alerts.map(plain));
          assert.deepEqual(q, w, `alerts after ${what}`);
          assert.equal(outs[0]!.errors.length, outs[1]!.errors.length, `errors after ${what}`);
          fold(logs[0]!, queue.takeChanges());
          fold(logs[1]!, walk.takeChanges());
          assert.deepEqual(logs[0], logs[1], `changelog after ${what}`);
        };
        for (const [i, o] of ops.entries()) {
          const what = `op ${i} ${JSON.stringify(o)}`;
          if (o.kind === "event") {
            wall += o.dt;
            const event = ev(`s${o.sensor}`, o.value, o.humidity ? "humidity" : "temperature");
            step((e, out) => e.onEvent(event, wall + o.skew, out, wall), what);
          } else if (o.kind === "tick") {
            wall += o.dt;
            step((e, out) => e.tick(out, wall), what);
          } else if (o.kind === "ack") {
            const open = queue.tracker.active().filter((ep) => ep.alert !== null).map((ep) => ep.alert_id)
              .sort();
            if (open.length === 0) continue;
            const id = open[o.pick % open.length]!;
            const acked = [queue, walk].map((e) => plain(e.acknowledge(id, "test")));
            assert.equal(acked[0], acked[1], what);
            step(() => {}, what);
          } else if (o.kind === "reload") {
            current = sets[o.variant]!;
            step((e) => e.setRules(current), what);
          } else if (o.kind === "restart") {
            queue = make(new RuleEngine());
            walk = make(new RuleEngine({ deadmanWalk: true }));
            queue.importState(changelog(logs[0]!));
            walk.importState(changelog(logs[1]!));
            queue.takeChanges();
            walk.takeChanges();
          } else {
            const stays = (key: string) =>
              (o.mask & (1 << Number(key.slice(key.lastIndexOf("s") + 1)))) === 0;
            step((e, out) => e.releaseSensors(stays, out), what);
          }
        }
        // The end of the input, and well past every deadline, repeat and escalation.
        for (const dt of [60_000, 60_000, 600_000]) {
          wall += dt;
          step((e, out) => e.tick(out, wall), `tick at the end +${dt}`);
        }
        const episodes = (e: Engine) => e.tracker.all().map(plain).sort();
        assert.deepEqual(episodes(queue), episodes(walk));
      },
    ),
    300,
  );
});

/** Alerts in a form that names what a failure was about. */
export function brief(a: SensorAlert): string {
  return `${a.rule_id} ${a.sensor_id} ${a.state} ${a.timestamp}`;
}
