/** The benchmark report as markdown: figures, targets, ratios, machine and the command. */
import type { BenchReport } from "./main.ts";
import { formatNs } from "./micro.ts";

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
  const label = (g: string | undefined, instances = 1) =>
    (g === undefined ? "" : `, ${g}`) + (instances > 1 ? `, ${instances} instances` : "");
  const lat5k = r.latency.find((l) => l.rate === 5000 && l.guarantee === s.guarantee);
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
      `| **This service**, ${x.rules} rules${label(x.guarantee, x.instances)} | ${n0(x.events_per_s)} | ${
        pct(x.events_per_s / r.ceiling.events_per_s)
      } | ` +
      `${x.cpu_cores.toFixed(2)} | ${x.cpu_us_per_event.toFixed(1)} | ${x.peak_rss_mib.toFixed(0)} MiB |`
    ),
    `| Naive consumer, same rules | ${n0(r.naive.events_per_s)} | ${
      pct(r.naive.events_per_s / r.ceiling.events_per_s)
    } | ` +
      `${r.naive.cpu_cores.toFixed(2)} | ${r.naive.cpu_us_per_event.toFixed(1)} | ${
        r.naive.peak_rss_mib.toFixed(0)
      } MiB |`,
    "",
    ...services.map((x) =>
      `Service${label(x.guarantee, x.instances)}: ${n0(x.events)} events measured in ${
        x.seconds.toFixed(1)
      } s${x.caught_up ? " (lag 0)" : " (time limit)"}, ${n0(x.alerts)} alerts.`
    ),
    `Naive: ${n0(r.naive.events)} events in ${r.naive.seconds.toFixed(1)} s.`,
    ...eosOverhead(services),
    "",
    "| Latency, event created → alert | p50 | p99 | max | alert consumed p50 / p99 | service peak RSS |",
    "| --- | ---: | ---: | ---: | ---: | ---: |",
    ...r.latency.map((l) =>
      `| ${n0(l.rate)} events/s${
        label(l.guarantee)
      } (${l.alerts} alerts) | ${l.produced_ms.p50} ms | ${l.produced_ms.p99} ms | ` +
      `${l.produced_ms.max} ms | ${l.consumed_ms.p50} / ${l.consumed_ms.p99} ms | ${
        l.peak_rss_mib === undefined ? "" : `${l.peak_rss_mib.toFixed(0)} MiB`
      } |`
    ),
  );
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
    `| ≥ 100,000 events/s end to end, ${s.rules} rules${label(s.guarantee)} | ${n0(s.events_per_s)} | ${
      yes(s.events_per_s >= 100_000)
    } |`,
    ...services.filter((x) => (x.instances ?? 1) > 1).map((x) =>
      `| ≥ 100,000 events/s end to end, ${x.rules} rules${
        label(x.guarantee, x.instances)
      } on this machine | ${n0(x.events_per_s)} | ${yes(x.events_per_s >= 100_000)} |`
    ),
    `| ≥ 50% of Kafka's own consumer | ${pct(r.ratios.service_vs_ceiling)} | ${
      yes(r.ratios.service_vs_ceiling >= 0.5)
    } |`,
    `| ≥ 5× the naive baseline | ${r.ratios.service_vs_naive.toFixed(1)}× | ${
      yes(r.ratios.service_vs_naive >= 5)
    } |`,
    `| p99 event → alert ≤ 25 ms at 5,000 events/s | ${lat5k?.produced_ms.p99 ?? "n/a"} ms | ${
      yes((lat5k?.produced_ms.p99 ?? Infinity) <= 25)
    } |`,
    `| 1,000 rules ≤ 1.5× the cost of 10: per event through the pipeline (rule stage alone) | ${
      Number.isNaN(ruleRatio)
        ? "not measured (--no-micro)"
        : `${ruleRatio.toFixed(2)}× (${engineRatio.toFixed(1)}×)`
    } | ${Number.isNaN(ruleRatio) ? "" : yes(ruleRatio <= 1.5)} |`,
    `| RSS ≤ 200 MB, ${n0(r.options.sensors)} sensors × ${s.rules} rules, catching up at full speed | ${
      (s.peak_rss_mib * 1.048576).toFixed(0)
    } MB | ${yes(s.peak_rss_mib * 1.048576 <= 200)} |`,
    ...(lat5k?.peak_rss_mib === undefined ? [] : [
      `| RSS ≤ 200 MB, the same state, at 5,000 events/s | ${
        (lat5k.peak_rss_mib * 1.048576).toFixed(0)
      } MB | ${yes(lat5k.peak_rss_mib * 1.048576 <= 200)} |`,
    ]),
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

function pct(x: number): string {
  return `${(x * 100).toFixed(0)}%`;
}
