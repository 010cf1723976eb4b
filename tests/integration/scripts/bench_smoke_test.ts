/**
 * `deno task bench` end to end at a tiny size, against the test broker: every stage runs with the
 * task's own permissions, and the report has the ceiling, both clients, the service under both
 * guarantees with one and two instances, the naive baseline, latency and the targets.
 */
import assert from "node:assert/strict";
import { brokers } from "../../helpers/kafka.ts";

Deno.test("deno task bench runs end to end and reports every figure", async () => {
  const out = await new Deno.Command("deno", {
    args: [
      "task",
      "bench",
      "--events",
      "3000",
      "--sensors",
      "200",
      "--rules",
      "10",
      "--no-micro",
      "--rates",
      "500",
      "--latency-seconds",
      "3",
      "--naive-seconds",
      "3",
      "--workers",
      "2,1",
    ],
    env: { KAFKA_BROKERS: brokers().join(","), NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  assert.equal(out.code, 0, `${stdout.slice(-3000)}\n${new TextDecoder().decode(out.stderr).slice(-3000)}`);
  const written = /Written: (bench-results\/\S+)\.md and \.json/.exec(stdout);
  assert.ok(written, stdout.slice(-2000));
  const base = new URL(`../../../${written[1]}`, import.meta.url).pathname;
  try {
    const report = JSON.parse(await Deno.readTextFile(`${base}.json`));
    assert.ok(report.ceiling.events_per_s > 0);
    assert.deepEqual(report.clients.map((c: { client: string }) => c.client), ["kafkajs", "platformatic"]);
    // guarantee/instances/workers: one instance with 2 engine workers, then with 1, then 2 instances.
    assert.deepEqual(
      report.services.map((s: { guarantee: string; instances: number; workers: number }) =>
        `${s.guarantee}/${s.instances}/${s.workers}`
      ),
      [
        "exactly_once/1/2",
        "at_least_once/1/2",
        "exactly_once/1/1",
        "at_least_once/1/1",
        "exactly_once/2/1",
        "at_least_once/2/1",
      ],
    );
    for (const s of report.services) {
      // At this size a run may commit everything at once, leaving no interval to measure a rate in.
      assert.ok(s.caught_up, `${s.guarantee}/${s.instances} did not catch up`);
      assert.ok(s.peak_rss_mib > 0 && s.alerts > 0);
    }
    assert.ok(report.naive.events_per_s > 0);
    assert.equal(report.latency.length, 2);
    for (const l of report.latency) assert.ok(l.alerts > 0 && l.peak_rss_mib > 0);
    assert.ok(report.notify.delivered > 0, "the healthy receiver got alerts while the other hung");
    assert.equal(report.backtest.events, 3000, "the backtest read the bench's events from Kafka");
    assert.ok(report.backtest.events_per_s > 0 && report.backtest.alerts > 0);
    const md = await Deno.readTextFile(`${base}.md`);
    assert.match(md, /\| Kafka ConsumerPerformance \(ceiling\) \|/);
    assert.match(md, /\| Naive consumer, same rules \|/);
    assert.match(md, /\| `deno task backtest` of the same events and rules, nothing produced/);
    assert.match(
      md,
      /\| Notification latency, alert created → healthy receiver, another receiver hanging \|/,
    );
    assert.match(md, /\| ≥ 5× the naive baseline, exactly_once \|/);
  } finally {
    await Deno.remove(`${base}.json`).catch(() => {});
    await Deno.remove(`${base}.md`).catch(() => {});
    await Deno.remove(base, { recursive: true }).catch(() => {});
  }
});
