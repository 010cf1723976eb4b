/** The benchmark report as markdown: figures, targets, ratios, machine and the command. */
import type { BenchReport } from "./types.ts";
import { formatNs } from "./micro.ts";
import { backtestRow } from "./backtest.ts";

const n0 = (n: number) => Math.round(n).toLocaleString("en-US");
const yes = (ok: boolean) => ok ? "met" : "**missed**";
const CLIENT_LABEL = {
  kafkajs: "kafkajs alone, no processing (the service's client, its settings)",
  platformatic: "@platformatic/kafka alone, no processing, same fetch sizes",
};

export function renderMarkdown(r: BenchReport): string {
  const lines: string[] = [];
  const s = r.service;
  const services = r.services ?? [s];
  const label = (g: string | undefined, instances = 1, workers = 1) =>
    (g === undefined ? "" : `, ${g}`) + (instances > 1 ? `, ${instances} instances` : "") +
    (workers > 1 ? `, ${workers} workers` : "");
  lines.push(
    `Machine: ${r.machine.cpu}, ${r.machine.cores} cores, ${r.machine.ram_gib} GiB RAM; broker on the same machine.`,
    `Versions: Deno ${r.versions.deno} (V8 ${r.versions.v8}), kafkajs ${r.versions.kafkajs}, Apache Kafka ${r.versions.kafka}.`,
    `Command: \`${r.command}\` (${n0(r.options.events)} events of ~${
      r.preload.mean_bytes.toFixed(0)
    } bytes, ` +
      `${n0(r.options.sensors)} sensors, ${r.options.partitions} partitions; preload ${
        r.preload.seconds.toFixed(1)
      } s, ` +
      `${n0(r.preload.events_per_s)} events/s).`,
    "",
    "| End to end (same topic, same run) | events/s | vs ceiling | CPU cores | CPU µs/event | peak RSS |",
    "| --- | ---: | ---: | ---: | ---: | ---: |",
    `| Kafka ConsumerPerformance (ceiling) | ${n0(r.ceiling.events_per_s)} | 100% | | | |`,
    ...(r.clients ?? []).map((c) =>
      `| ${CLIENT_LABEL[c.client]} | ${n0(c.events_per_s)} | ${
        pct(c.events_per_s / r.ceiling.events_per_s)
      } | | ` +
      `${c.cpu_us_per_event.toFixed(1)} | ${c.peak_rss_mib.toFixed(0)} MiB |`
    ),
    ...services.map((x) =>
      `| **This service**, ${x.rules} rules${label(x.guarantee, x.instances, x.workers)} | ${
        n0(x.events_per_s)
      } | ${pct(x.events_per_s / r.ceiling.events_per_s)} | ` +
      `${x.cpu_cores.toFixed(2)} | ${x.cpu_us_per_event.toFixed(1)} | ${x.peak_rss_mib.toFixed(0)} MiB |`
    ),
    `| Naive consumer, same rules | ${n0(r.naive.events_per_s)} | ${
      pct(r.naive.events_per_s / r.ceiling.events_per_s)
    } | ` +
      `${r.naive.cpu_cores.toFixed(2)} | ${r.naive.cpu_us_per_event.toFixed(1)} | ${
        r.naive.peak_rss_mib.toFixed(0)
      } MiB |`,
    ...(r.backtest === undefined ? [] : [backtestRow(r.backtest, r.ceiling.events_per_s)]),
    "",
    ...services.map((x) =>
      `Service${label(x.guarantee, x.instances, x.workers)}: ${n0(x.events)} events measured in ${
        x.seconds.toFixed(1)
      } s${x.caught_up ? " (lag 0)" : " (time limit)"}, ${n0(x.alerts)} alerts.`
    ),
    `Naive: ${n0(r.naive.events)} events in ${r.naive.seconds.toFixed(1)} s.`,
    ...eosOverhead(services),
    "",
    "| Latency, event created → alert | p50 | p99 | p99.9 | max | alert consumed p50 / p99 | service peak RSS |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ...r.latency.map((l) =>
      `| ${n0(l.rate)} events/s${
        label(l.guarantee)
      } (${l.alerts} alerts) | ${l.produced_ms.p50} ms | ${l.produced_ms.p99} ms | ` +
      `${
        l.produced_ms.p999 ?? "—"
      } ms | ${l.produced_ms.max} ms | ${l.consumed_ms.p50} / ${l.consumed_ms.p99} ms | ${
        l.peak_rss_mib === undefined ? "" : `${l.peak_rss_mib.toFixed(0)} MiB`
      } |`
    ),
  );
  if (r.notify !== undefined) {
    const nl = r.notify;
    lines.push(
      "",
      "| Notification latency, alert created → healthy receiver, another receiver hanging | p50 | p99 | p99.9 | max | notifier peak RSS |",
      "| --- | ---: | ---: | ---: | ---: | ---: |",
      `| ${n0(nl.rate)} alerts/s for ${nl.seconds} s (${n0(nl.delivered)} delivered, the hanging one held ${
        n0(nl.hanging_requests)
      } requests) | ${nl.healthy_ms.p50} ms | ${nl.healthy_ms.p99} ms | ${nl.healthy_ms.p999} ms | ${nl.healthy_ms.max} ms | ${
        nl.peak_rss_mib.toFixed(0)
      } MiB |`,
    );
  }
  for (const x of services) {
    if (x.profile === undefined) continue;
    const p = x.profile;
    lines.push(
      "",
      `Profile${label(x.guarantee, x.instances, x.workers)} (\`--profile\`; ${
        p.busy_s.toFixed(1)
      } s busy, idle left out; the profiler slows the run):`,
      "",
      "| Area | share | Function (self time) | share |",
      "| --- | ---: | --- | ---: |",
      ...Array.from({ length: Math.max(p.by_area.length, p.by_function.length) }, (_, i) => {
        const a = p.by_area[i];
        const f = p.by_function[i];
        return `| ${a?.[0] ?? ""} | ${a === undefined ? "" : pct1(a[1])} | ${
          f === undefined ? "" : `\`${f[0]}\``
        } | ${f === undefined ? "" : pct1(f[1])} |`;
      }),
    );
  }
  if (r.micro !== null) {
    lines.push("", "| Micro (deno bench) | avg | p99 |", "| --- | ---: | ---: |");
    for (const m of r.micro) lines.push(`| ${m.name} | ${formatNs(m.avg_ns)} | ${formatNs(m.p99_ns)} |`);
  }
  const micro = (group: string, prefix: string) =>
    r.micro?.find((m) => m.group === group && m.name.startsWith(prefix))?.avg_ns ?? NaN;
  // Judged on what an event costs in the engine as a whole; the rule stage alone is shown beside it.
  const ruleRatio = micro("pipeline", "1,000 rules") / micro("pipeline", "10 rules");
  const engineRatio = micro("rules", "1,000 rules") / micro("rules", "10 rules");
  lines.push(
    "",
    "| Target | Result | |",
    "| --- | --- | --- |",
    // One row per measured configuration; the first of each is the default (judged by the ratios).
    ...services.map((x) =>
      `| ≥ 100,000 events/s end to end, ${x.rules} rules${label(x.guarantee, x.instances, x.workers)} | ${
        n0(x.events_per_s)
      } | ${yes(x.events_per_s >= 100_000)} |`
    ),
    `| ≥ 50% of Kafka's own consumer${label(s.guarantee)} | ${pct(r.ratios.service_vs_ceiling)} | ${
      yes(r.ratios.service_vs_ceiling >= 0.5)
    } |`,
    ...services.filter((x) => (x.instances ?? 1) === 1).map((x) =>
      `| ≥ 5× the naive baseline${label(x.guarantee, x.instances, x.workers)} | ${
        (x.events_per_s / r.naive.events_per_s).toFixed(1)
      }× | ${yes(x.events_per_s / r.naive.events_per_s >= 5)} |`
    ),
    ...r.latency.filter((l) => l.rate === 5000).map((l) =>
      `| p99 event → alert ≤ 25 ms at 5,000 events/s${label(l.guarantee)} | ${l.produced_ms.p99} ms | ${
        yes(l.produced_ms.p99 <= 25)
      } |`
    ),
    `| 1,000 rules ≤ 1.5× the cost of 10: per event through the pipeline (rule stage alone) | ${
      Number.isNaN(ruleRatio)
        ? "not measured (--no-micro)"
        : `${ruleRatio.toFixed(2)}× (${engineRatio.toFixed(1)}×)`
    } | ${Number.isNaN(ruleRatio) ? "" : yes(ruleRatio <= 1.5)} |`,
    ...r.latency.filter((l) => l.rate === 5000 && l.peak_rss_mib !== undefined).map((l) =>
      `| RSS ≤ 200 MB, ${n0(r.options.sensors)} sensors × ${s.rules} rules, at 5,000 events/s${
        label(l.guarantee)
      } | ${mb(l.peak_rss_mib!)} MB | ${yes(mb(l.peak_rss_mib!) <= 200)} |`
    ),
    ...services.filter((x) => (x.instances ?? 1) === 1).map((x) =>
      `| RSS ≤ 200 MB, the same state, catching up at full speed${
        label(x.guarantee, x.instances, x.workers)
      } | ${mb(x.peak_rss_mib)} MB | ${yes(mb(x.peak_rss_mib) <= 200)} |`
    ),
  );
  return lines.join("\n") + "\n";
}

/** Throughput, CPU per event and memory of exactly-once against at-least-once, when both were measured. */
function eosOverhead(services: BenchReport["service"][]): string[] {
  const one = services.filter((x) => (x.instances ?? 1) === 1);
  const eos = one.find((x) => x.guarantee === "exactly_once");
  const alo = one.find((x) => x.guarantee === "at_least_once");
  if (eos === undefined || alo === undefined) return [];
  return [
    `Exactly-once overhead: ${pct(1 - eos.events_per_s / alo.events_per_s)} less throughput, ` +
    `${(eos.cpu_us_per_event / alo.cpu_us_per_event).toFixed(2)}× the CPU per event, ` +
    `${(eos.peak_rss_mib - alo.peak_rss_mib).toFixed(0)} MiB more peak RSS.`,
  ];
}

/** MiB → MB (the target is in MB). */
function mb(mib: number): number {
  return Math.round(mib * 1.048576);
}

function pct1(x: number): string {
  return `${(x * 100).toFixed(1)}%`;
}

function pct(x: number): string {
  return `${(x * 100).toFixed(0)}%`;
}
