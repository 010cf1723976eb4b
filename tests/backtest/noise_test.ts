/**
 * The backtest counts noise control per rule: flapping notices and escalations from the engine, and,
 * with the rule files' `inhibit:` entries and `max_notifications` caps applied to its alerts in event
 * time, the notifications that would have been sent, inhibited and held back by the storm guard.
 */
import assert from "node:assert/strict";
import { runBacktest } from "./_recording.ts";

const RULES = `rules:
  - id: door-flap
    sensor_type: temperature
    sensor_id: flap-1
    threshold: { max: 30 }
    priority: normal
    flapping: { window: 10m, max_transitions: 4 }
  - id: freezer-warm
    sensor_type: temperature
    sensor_id: freezer-1
    threshold: { max: -15 }
    priority: normal
    escalate:
      - { after: 2m, priority: high }
      - { after: 5m, priority: critical }
  - id: hot-critical
    sensor_type: temperature
    sensor_id: hot-1
    threshold: { max: 30 }
    priority: critical
  - id: hot-high
    sensor_type: temperature
    sensor_id: "hot-*"
    threshold: { max: 30 }
    for: 30s
    repeat_interval: 1m
    priority: high
  - id: storm
    sensor_type: temperature
    sensor_id: "st-*"
    threshold: { max: 30 }
    priority: low
    max_notifications: { count: 2, per: 1m }
inhibit:
  - source: { rule_id: hot-critical }
    target: { rule_id: hot-high }
    equal: [sensor_id]
`;

const T0 = Date.parse("2026-01-01T00:00:00Z");

/** 15 minutes every 10 s: flap-1 alternates for 2 minutes then stays cool; the others stay hot. */
function events(): string {
  const lines: string[] = [];
  const ev = (sensor: string, s: number, value: number) =>
    lines.push(JSON.stringify({
      event_id: `${sensor}-${s}`,
      sensor_id: sensor,
      sensor_type: "temperature",
      value,
      unit: "°C",
      timestamp: new Date(T0 + s * 1000).toISOString(),
    }));
  for (let s = 0; s <= 900; s += 10) {
    ev("flap-1", s, s <= 120 && (s / 10) % 2 === 0 ? 40 : 20);
    ev("freezer-1", s, -5);
    ev("hot-1", s, 40);
    ev("hot-2", s, 40);
    if (s === 0) { for (let i = 1; i <= 5; i++) ev(`st-${i}`, s, 40); }
  }
  return lines.join("\n") + "\n";
}

async function rulesDir(): Promise<string> {
  const root = new URL("../../", import.meta.url).pathname;
  const dir = await Deno.makeTempDir({ dir: root, prefix: ".test-rules-backtest-noise-" });
  await Deno.writeTextFile(`${dir}/noise.yaml`, RULES);
  return dir;
}

interface RuleJson {
  rule_id: string;
  noise: { flapping: number; escalations: number };
  notifications: { sent: number; inhibited: number; held: number; summaries: number };
}

Deno.test("backtest --json counts flapping notices, escalations, and notifications sent, inhibited and held", async () => {
  const dir = await rulesDir();
  try {
    const out = await runBacktest(["--input", "-", "--json", "--rules", dir], { stdin: events() });
    assert.equal(out.code, 0, out.stdout + out.stderr);
    const report = JSON.parse(out.stdout);
    const rule = (id: string): RuleJson => report.rules.find((r: RuleJson) => r.rule_id === id);
    const alertsOf = (id: string, sensor?: string) =>
      report.alerts.filter((a: { rule_id: string; sensor_id: string }) =>
        a.rule_id === id && (sensor === undefined || a.sensor_id === sensor)
      ).length;

    assert.equal(rule("door-flap").noise.flapping, 1, "one flapping notice");
    assert.equal(rule("freezer-warm").noise.escalations, 2, "high after 2m, critical after 5m");
    assert.equal(rule("hot-high").noise.flapping, 0);
    assert.equal(rule("hot-high").noise.escalations, 0);

    // hot-1's notices of hot-high are inhibited by hot-critical for the same sensor; hot-2's are sent.
    const hot1 = alertsOf("hot-high", "hot-1");
    assert.ok(hot1 > 5, `hot-1 fires and repeats (${hot1})`);
    assert.deepEqual(rule("hot-high").notifications, {
      sent: alertsOf("hot-high", "hot-2"),
      inhibited: hot1,
      held: 0,
      summaries: 0,
    });
    assert.deepEqual(rule("hot-critical").notifications, { sent: 1, inhibited: 0, held: 0, summaries: 0 });

    // Five alerts within the first minute under a cap of 2 per minute: 2 sent, 3 held, 1 summary.
    assert.equal(alertsOf("storm"), 5);
    assert.deepEqual(rule("storm").notifications, { sent: 2, inhibited: 0, held: 3, summaries: 1 });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("backtest prints a notifications table per rule with flapping notices, escalations, inhibited and held", async () => {
  const dir = await rulesDir();
  try {
    const out = await runBacktest(["--input", "-", "--rules", dir], { stdin: events() });
    assert.equal(out.code, 0, out.stdout + out.stderr);
    const lines = out.stdout.split("\n");
    const head = lines.findIndex((l) =>
      /^RULE\s+SENT\s+INHIBITED\s+HELD\s+SUMMARIES\s+FLAPPING\s+ESCALATIONS$/.test(l)
    );
    assert.ok(head > 0, out.stdout);
    const row = (id: string) => lines.slice(head).find((l) => l.startsWith(`${id} `)) ?? "";
    assert.match(row("storm"), /^storm\s+2\s+0\s+3\s+1\s+0\s+0$/);
    assert.match(row("freezer-warm"), /^freezer-warm\s+\d+\s+0\s+0\s+0\s+0\s+2$/);
    assert.match(row("hot-high"), /^hot-high\s+\d+\s+[1-9]\d*\s+0\s+0\s+0\s+0$/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("backtest --html shows the notifications table per rule", async () => {
  const dir = await rulesDir();
  const page = `${dir}/review.html`;
  try {
    const out = await runBacktest(["--input", "-", "--rules", dir, "--html", page], { stdin: events() });
    assert.equal(out.code, 0, out.stdout + out.stderr);
    const html = await Deno.readTextFile(page);
    const table = /<table class="notifications">[\s\S]*?<\/table>/.exec(html)?.[0] ?? "";
    assert.match(table, /<th>Sent<\/th><th>Inhibited<\/th><th>Held<\/th><th>Summaries<\/th>/);
    const cells = (id: string) =>
      [...(new RegExp(`<tr><td>${id}</td>(.*?)</tr>`).exec(table)?.[1] ?? "").matchAll(
        /<td[^>]*>([^<]*)<\/td>/g,
      )]
        .map((m) => m[1]);
    assert.deepEqual(cells("storm"), ["2", "0", "3", "1", "0", "0"]);
    assert.deepEqual(cells("freezer-warm").slice(1), ["0", "0", "0", "0", "2"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
