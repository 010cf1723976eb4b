/**
 * What a route's `repeat_interval` re-sends, and when an alert stops being repeated, in virtual time:
 * two routes by priority, as an operator pages critical and high alerts differently.
 */
import assert from "node:assert/strict";
import type { SensorAlert } from "../../src/contract/schemas.ts";
import { Dispatcher, type DispatcherOptions, type NotifierInstance } from "../../src/notifiers/dispatcher.ts";
import { MAX_REPEATED, MAX_REPEATED_PER_GROUP } from "../../src/notifiers/grouping.ts";
import type { Notification } from "../../src/notifiers/plugin.ts";
import { alert, captureLogger, notifierSet } from "../helpers/notifiers.ts";
import { ManualClock } from "../helpers/clock.ts";
import { fileSilences, silenceOn } from "../helpers/silences.ts";
import { SilenceGate } from "../../src/notifiers/silences/gate.ts";
import { parseRuleFile } from "../../src/rules/load.ts";

const S = 1000;
const M = 60 * S;
const H = 60 * M;

const grouped = { group_by: ["rule_id"], group_wait: "30s", group_interval: "5m", repeat_interval: "4h" };
const byPriority = [
  { match: { priority: "critical" }, receivers: ["g"], ...grouped },
  { match: { priority: "high" }, receivers: ["g"], ...grouped },
];

interface Call {
  at: number;
  receiver: string;
  id: string;
  ids: string[];
}

function setup(
  routes: unknown[] = byPriority,
  over: Partial<DispatcherOptions> = {},
  receivers = ["g"],
) {
  const calls: Call[] = [];
  const clock = new ManualClock();
  const instances: NotifierInstance[] = receivers.map((name) => ({
    name,
    plugin: "scripted",
    notifier: {
      notify: (batch: Notification[], ctx) => {
        calls.push({ at: clock.now(), receiver: name, id: ctx.id, ids: batch.map((n) => n.id) });
        return Promise.resolve();
      },
    },
  }));
  const set = notifierSet(instances, {
    file: { notifiers: receivers.map((name) => ({ name, plugin: "x" })), routes },
    policy: { maxAttempts: 1 },
  });
  const d = new Dispatcher({
    notifiers: () => set,
    logger: captureLogger().logger,
    deadLetter: () => Promise.resolve(),
    dlqTopic: "dlq",
    alertsTopic: "alerts",
    clock,
    ...over,
  });
  const repeats = () => calls.filter((c) => c.id.includes(".repeat-"));
  return { d, clock, calls, repeats };
}

const resolved = (a: SensorAlert, over: Partial<SensorAlert> = {}): SensorAlert => ({
  ...a,
  state: "resolved",
  ...over,
});

Deno.test("an escalated alert's resolved notice (another priority, another route) ends its repeats in every group", async () => {
  const { d, clock, calls, repeats } = setup();
  const first = alert({ alert_id: "esc-1", rule_id: "esc", priority: "high" });
  d.submit([first]);
  await clock.at(1 * H);
  // The rule's escalate raised it: the notice goes to the critical route.
  const escalated = { ...first, priority: "critical" as const, escalation: 1 };
  d.submit([escalated]);
  await clock.at(2 * H);
  d.submit([resolved(escalated)]);
  await clock.at(13 * H);
  assert.deepEqual(calls.map((c) => c.ids), [["esc-1.firing"], ["esc-1.firing.esc1"], [
    "esc-1.resolved.esc1",
  ]]);
  assert.deepEqual(repeats(), [], "nothing resolved is re-paged");
  assert.equal(d.groups, 0, "both groups end once nothing in them fires");
  assert.equal(clock.timers, 0);
});

Deno.test("an escalated alert is repeated at its new priority only, not also at its old one", async () => {
  const { d, clock, repeats } = setup();
  const first = alert({ alert_id: "esc-2", rule_id: "esc", priority: "high" });
  d.submit([first]);
  await clock.at(1 * H);
  d.submit([{ ...first, priority: "critical", escalation: 1 }]);
  await clock.at(10 * H);
  assert.deepEqual(repeats().map((c) => [c.at, c.ids]), [
    [1 * H + 30 * S + 4 * H, ["esc-2.firing.esc1"]],
    [1 * H + 30 * S + 8 * H, ["esc-2.firing.esc1"]],
  ]);
});

Deno.test("a rule's labels edited while it fires: its resolved notice (another group) ends the repeats", async () => {
  const routes = [{ receivers: ["g"], ...grouped, group_by: ["rule_id", "labels.team"] }];
  const { d, clock, repeats } = setup(routes);
  const a = alert({ alert_id: "edit-1", rule_id: "edit", labels: { team: "safety" } });
  d.submit([a]);
  await clock.at(1 * H);
  d.submit([resolved(a, { labels: { team: "facilities" } })]);
  await clock.at(13 * H);
  assert.deepEqual(repeats(), []);
  assert.equal(d.groups, 0);
  assert.equal(clock.timers, 0);
});

Deno.test("a resolved notice ends the repeats of every group `continue` put its alert in", async () => {
  const routes = [
    { match: { rule_id: "both" }, receivers: ["g"], continue: true, ...grouped },
    { match: { priority: "high" }, receivers: ["h"], ...grouped },
    { match: { priority: "critical" }, receivers: ["g"] },
  ];
  const { d, clock, calls, repeats } = setup(routes, {}, ["g", "h"]);
  const a = alert({ alert_id: "both-1", rule_id: "both", priority: "high" });
  d.submit([a]);
  await clock.at(1 * H);
  // Escalated to critical: the notice goes to g's first route only, never to h's.
  d.submit([resolved(a, { priority: "critical", escalation: 1 })]);
  await clock.at(13 * H);
  assert.deepEqual(calls.map((c) => [c.receiver, c.ids]), [
    ["g", ["both-1.firing"]],
    ["h", ["both-1.firing"]],
    ["g", ["both-1.resolved.esc1"]],
  ]);
  assert.deepEqual(repeats(), []);
  assert.equal(d.groups, 0);
});

Deno.test("a resolved notice that goes to no group (an ungrouped route) still ends the repeats", async () => {
  const routes = [{ match: { priority: "critical" }, receivers: ["g"] }, byPriority[1]];
  const { d, clock, repeats } = setup(routes);
  const a = alert({ alert_id: "plain-1", rule_id: "plain", priority: "high" });
  d.submit([a]);
  await clock.at(1 * H);
  d.submit([resolved(a, { priority: "critical", escalation: 1 })]);
  await clock.at(13 * H);
  assert.deepEqual(repeats(), []);
  assert.equal(d.groups, 0);
});

Deno.test("alerts of a rule with notify_resolved: false are notified once, never repeated", async () => {
  const { d, clock, calls, repeats } = setup(byPriority, {
    notifiesResolved: (rule) => rule !== "quiet",
  });
  // 10 episodes an hour for 3 hours, each its own alert id; no resolved notice is ever written.
  for (let i = 0; i < 30; i++) {
    d.submit([alert({ alert_id: `quiet-${i}`, rule_id: "quiet", priority: "high" })]);
    await clock.at((i + 1) * 6 * M);
  }
  await clock.at(13 * H);
  assert.equal(calls.length, 30, "each episode once");
  assert.deepEqual(repeats(), []);
  assert.equal(d.groups, 0);
  assert.equal(clock.timers, 0);
});

Deno.test("a rule's own repeats of a notify_resolved: false alert are still notified", async () => {
  const { d, clock, calls } = setup(byPriority, { notifiesResolved: () => false });
  const a = alert({ alert_id: "quiet-r", rule_id: "quiet", priority: "high" });
  d.submit([a]);
  await clock.at(1 * H);
  d.submit([{ ...a, repeat: 1 }]);
  await clock.at(2 * H);
  assert.deepEqual(calls.map((c) => c.ids), [["quiet-r.firing"], ["quiet-r.firing.1"]]);
});

Deno.test("storm summaries are sent once, never repeated", async () => {
  const { d, clock, calls, repeats } = setup(byPriority, {
    maxNotifications: (rule) => rule === "storm" ? { count: 1, perMs: 60 * S } : null,
  });
  const storm = Array.from({ length: 5 }, (_, i) => alert({ alert_id: `storm-${i}`, rule_id: "storm" }));
  d.submit(storm);
  await clock.at(1 * H);
  d.submit(storm.map((a) => resolved(a)));
  await clock.at(13 * H);
  const sent = calls.flatMap((c) => c.ids);
  assert.ok(sent.filter((id) => id.startsWith("storm.storm.")).length >= 1, "the summary went out");
  assert.deepEqual(repeats(), []);
  assert.equal(d.groups, 0);
  assert.equal(clock.timers, 0);
});

Deno.test("a repeat re-sends at most MAX_REPEATED_PER_GROUP alerts, the newest, and counts the dropped", async () => {
  const { d, clock, repeats } = setup();
  const n = MAX_REPEATED_PER_GROUP + 500;
  d.submit(Array.from({ length: n }, (_, i) => alert({ alert_id: `flood-${i}`, rule_id: "flood" })));
  await clock.at(5 * H);
  const [repeat, ...more] = repeats();
  assert.equal(more.length, 0);
  assert.equal(repeat!.ids.length, MAX_REPEATED_PER_GROUP);
  assert.equal(repeat!.ids[0], "flood-500.firing", "the oldest are the ones dropped");
  assert.deepEqual(Object.fromEntries(d.repeatsDropped()), { g: 500 });
});

Deno.test("firing alerts kept for repeats are bounded over all groups too: the oldest are dropped", async () => {
  const { d, clock, repeats } = setup();
  // One group more than the bound holds when each is full.
  const groups = MAX_REPEATED / MAX_REPEATED_PER_GROUP + 1;
  for (let r = 0; r < groups; r++) {
    d.submit(
      Array.from(
        { length: MAX_REPEATED_PER_GROUP },
        (_, i) => alert({ alert_id: `r${r}-${i}`, rule_id: `r${r}` }),
      ),
    );
  }
  await clock.at(30 * S + 5 * M);
  assert.equal(d.groups, groups - 1, "the group whose alerts were all dropped ends");
  assert.deepEqual(Object.fromEntries(d.repeatsDropped()), { g: MAX_REPEATED_PER_GROUP });
  await clock.at(30 * S + 4 * H);
  assert.equal(repeats().length, groups - 1);
  assert.ok(repeats().every((c) => !c.ids[0]!.startsWith("r0-")));
  assert.equal(repeats().reduce((n, c) => n + c.ids.length, 0), MAX_REPEATED);
});

Deno.test("a repeat leaves out an alert silenced since it was sent, and includes it again once the silence ends", async () => {
  const { silences } = await fileSilences({ prefix: "silences-repeat-" });
  const gate = new SilenceGate(silences, captureLogger().logger);
  const { d, clock, repeats } = setup(byPriority, { silences: gate });
  try {
    const quiet = alert({ alert_id: "quiet-1", rule_id: "quiet", priority: "high", sensor_id: "q-1" });
    const loud = alert({ alert_id: "loud-1", rule_id: "quiet", priority: "high", sensor_id: "l-1" });
    d.submit([quiet, loud]);
    await clock.at(30 * S);
    const one = await silences.create(silenceOn("sensor_id", "q-1"));
    await clock.at(30 * S + 4 * H);
    assert.deepEqual(repeats().map((c) => c.ids), [["loud-1.firing"]]);
    await silences.expire(one.id);
    await clock.at(30 * S + 8 * H);
    assert.deepEqual(repeats().at(-1)?.ids, ["quiet-1.firing", "loud-1.firing"]);
    // The whole group silenced: no repeat goes out, and the next is due as soon as the silence ends.
    const all = await silences.create(silenceOn("rule_id", "quiet"));
    await clock.at(30 * S + 12 * H);
    assert.equal(repeats().length, 2);
    await silences.expire(all.id);
    await clock.at(30 * S + 12 * H + 5 * M);
    assert.equal(repeats().length, 3);
  } finally {
    d.close();
    await silences.close();
  }
});

Deno.test("a repeat leaves out an alert a source has inhibited since it was sent", async () => {
  const { inhibitions } = parseRuleFile(
    "rules/noise.yaml",
    `inhibit:
  - source: { rule_id: gateway-down }
    target: { rule_id: hot }
    equal: [location]
`,
  );
  const { d, clock, repeats } = setup(byPriority, { inhibitions: () => inhibitions });
  const hot = alert({ alert_id: "hot-1", rule_id: "hot", priority: "high", location: "Hall 7" });
  d.submit([hot]);
  await clock.at(30 * S);
  d.submit([alert({ alert_id: "gw-1", rule_id: "gateway-down", priority: "critical", location: "Hall 7" })]);
  await clock.at(30 * S + 4 * H + 5 * M);
  assert.deepEqual(repeats().map((c) => c.ids), [["gw-1.firing"]]);
  d.submit([
    resolved(alert({ alert_id: "gw-1", rule_id: "gateway-down", priority: "critical", location: "Hall 7" })),
  ]);
  await clock.at(30 * S + 8 * H + 10 * M);
  assert.ok(repeats().some((c) => c.ids.includes("hot-1.firing")), "repeated again once the source resolved");
  d.close();
});

Deno.test("a repeat leaves out an alert acknowledged since it was sent", async () => {
  const { d, clock, repeats } = setup();
  const acked = alert({ alert_id: "acked-1", rule_id: "busy", priority: "high" });
  const open = alert({ alert_id: "open-1", rule_id: "busy", priority: "high" });
  d.submit([acked, open]);
  await clock.at(30 * S);
  d.submit([{ ...acked, acknowledged: true, ack_update: true }]);
  await clock.at(30 * S + 8 * H);
  assert.deepEqual(repeats().map((c) => c.ids), [["open-1.firing"], ["open-1.firing"]]);
  d.close();
});
