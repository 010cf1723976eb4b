/**
 * The bench report's shape: what `deno task bench` measures and writes to bench-results/ (JSON), and
 * what report.ts renders. Its own module, so that main.ts and report.ts do not import each other.
 *
 * @module
 */
import type { BacktestRun } from "./backtest.ts";
import type { ClientRun } from "./client_ceiling.ts";
import type { NotifyLatencyResult } from "./notify.ts";
import type { LatencyResult } from "./latency.ts";
import type { ConsumerRun } from "./measure.ts";
import type { MicroResult } from "./micro.ts";

export interface BenchOptions {
  events: number;
  sensors: number;
  partitions: number;
  rules: number;
  anomaly: number;
  rates: number[];
  latencySeconds: number;
  naiveSeconds: number;
  micro: boolean;
  profile: boolean;
  /** PROCESSING_GUARANTEE values to measure side by side; the first is the one the ratios judge. */
  guarantees: Guarantee[];
  /** Instance counts to measure each guarantee with (one group, one process each); the first is judged. */
  instances: number[];
  /**
   * Engine workers per process (`WORKERS`) to measure a single instance with; the first is judged.
   * Default: the service's own default (one per core), then 1 (the engine in the main thread).
   */
  workers: number[];
}

export type Guarantee = "exactly_once" | "at_least_once";

export type ServiceRun = ConsumerRun & {
  rules: number;
  alerts: number;
  guarantee?: Guarantee;
  /** Processes in the consumer group (absent in older reports: one). */
  instances?: number;
  /** Engine workers per process (absent in older reports: one). */
  workers?: number;
  /** With --profile: where the CPU went, share of busy time by area and by function. */
  profile?: { busy_s: number; by_area: [string, number][]; by_function: [string, number][] };
};

export interface BenchReport {
  started_at: string;
  command: string;
  machine: { cpu: string; cores: number; ram_gib: number };
  versions: { deno: string; v8: string; kafkajs: string; kafka: string };
  options: BenchOptions;
  micro: MicroResult[] | null;
  preload: { events: number; seconds: number; events_per_s: number; mean_bytes: number };
  ceiling: { events_per_s: number; mb_per_s: number; seconds: number };
  /** Each JavaScript client alone on the same topic (reports before this field have none). */
  clients?: (ClientRun & { peak_rss_mib: number })[];
  /** The first of `services`: the default guarantee. */
  service: ServiceRun;
  /** One run per guarantee (reports written before this field have `service` only). */
  services?: ServiceRun[];
  naive: ConsumerRun & { rules: number; alerts: number };
  latency: LatencyResult[];
  /** Notification latency to a healthy receiver while another hangs (reports before this have none). */
  notify?: NotifyLatencyResult;
  ratios: { service_vs_ceiling: number; service_vs_naive: number };
  /** `deno task backtest` over the same events and rules (reports before this have none). */
  backtest?: BacktestRun;
}
