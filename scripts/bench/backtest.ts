/**
 * The bench's backtest row: `deno task backtest` (its own permissions) over the whole events topic the
 * service runs on, with the same rules: events/s, against the service's rate in the same run. It
 * should be faster: it produces nothing, commits nothing and keeps no changelog.
 *
 * @module
 */
import { memoryMiB } from "./proc.ts";

export interface BacktestRun {
  events: number;
  /** The backtest's own reading time (first batch to last), start-up and group join left out. */
  seconds: number;
  events_per_s: number;
  /** The process from start to exit. */
  wall_seconds: number;
  /** Peak RSS, read from /proc while it ran (the last reading before it exited). */
  peak_rss_mib: number;
  alerts: number;
  /** events/s over the first service run's (the default guarantee). */
  vs_service: number;
}

export async function measureBacktest(opts: {
  root: string;
  bootstrap: string;
  topic: string;
  rulesDir: string;
  serviceEventsPerS: number;
}): Promise<BacktestRun> {
  const task = JSON.parse(await Deno.readTextFile(`${opts.root}deno.json`)).tasks.backtest as string;
  const started = performance.now();
  const child = new Deno.Command("deno", {
    args: [
      "run",
      ...task.split(/\s+/).filter((a) => a.startsWith("--allow-")),
      "src/backtest/cli.ts",
      "--json",
      "--rules",
      opts.rulesDir,
    ],
    cwd: opts.root,
    env: { KAFKA_BROKERS: opts.bootstrap, SENSOR_TOPIC: opts.topic, LOG_LEVEL: "warn" },
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  let peak = 0;
  const sampler = setInterval(() => {
    memoryMiB(child.pid).then((m) => peak = Math.max(peak, m.peak), () => {});
  }, 250);
  const out = await child.output().finally(() => clearInterval(sampler));
  const wall = (performance.now() - started) / 1000;
  if (!out.success) throw new Error(`The backtest exited with code ${out.code}`);
  const report = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    input: { records: number; seconds: number };
    alerts: unknown[];
  };
  const eps = report.input.records / report.input.seconds;
  return {
    events: report.input.records,
    seconds: report.input.seconds,
    events_per_s: eps,
    wall_seconds: wall,
    peak_rss_mib: peak,
    alerts: report.alerts.length,
    vs_service: eps / opts.serviceEventsPerS,
  };
}

/** The row of the end-to-end table. */
export function backtestRow(b: BacktestRun, ceilingEventsPerS: number): string {
  const n0 = (n: number) => Math.round(n).toLocaleString("en-US");
  return `| \`deno task backtest\` of the same events and rules, nothing produced (${
    b.vs_service.toFixed(2)
  }× the service) | ${n0(b.events_per_s)} | ${(100 * b.events_per_s / ceilingEventsPerS).toFixed(0)}% | | | ${
    b.peak_rss_mib.toFixed(0)
  } MiB |`;
}
