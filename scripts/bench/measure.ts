/**
 * Measures a consumer process from outside, as an operator would: events/s from its group's committed
 * offsets (kafkajs commits after every batch), CPU from /proc/<pid>/stat, peak RSS from VmHWM.
 *
 * @module
 */
import type { Admin } from "kafkajs";
import { cpuSeconds, memoryMiB } from "./proc.ts";
import { percentile as nearestRank } from "../../src/rules/windows.ts";

export interface ConsumerRun {
  /** Events between the first and the last commit observed. */
  events: number;
  seconds: number;
  events_per_s: number;
  /** CPU cores busy on average over the measured interval (user + system; all processes). */
  cpu_cores: number;
  cpu_us_per_event: number;
  /** The highest peak RSS of one process. */
  peak_rss_mib: number;
  /** True when the group caught up (lag 0) before the time limit. */
  caught_up: boolean;
}

export async function committed(admin: Admin, groupId: string, topic: string): Promise<number> {
  const [t] = await admin.fetchOffsets({ groupId, topics: [topic] });
  let n = 0;
  for (const p of t?.partitions ?? []) n += Math.max(0, Number(p.offset));
  return n;
}

/**
 * Follows `child` (one process, or several in one group) until its group has committed `total`
 * records or `limitS` seconds have passed after its first commit. The interval runs from the first
 * commit seen to the last one, so process start-up and the first group join are not counted.
 */
export async function followConsumer(
  admin: Admin,
  child: Deno.ChildProcess | Deno.ChildProcess[],
  opts: {
    groupId: string;
    topic: string;
    total: number;
    limitS: number;
    startTimeoutS?: number;
    /** Group members to wait for before measuring (engine workers: more than processes). */
    members?: number;
    onProgress?(done: number): void;
  },
): Promise<ConsumerRun> {
  type Sample = { t: number; n: number; cpu: number };
  let first: Sample | null = null;
  let last: Sample | null = null;
  const children = Array.isArray(child) ? child : [child];
  const cpuOf = async () => {
    let sum = 0;
    for (const c of children) sum += await cpuSeconds(c.pid);
    return sum;
  };
  let exited = false;
  for (const c of children) c.status.then(() => exited = true);
  const members = opts.members ?? children.length;
  const started = performance.now();
  let lastReport = 0;
  for (;;) {
    if (exited) throw new Error("The consumer process exited before it caught up");
    const n = await committed(admin, opts.groupId, opts.topic);
    const t = performance.now();
    // With several processes, measuring starts once all of them are in the group (its first
    // rebalances are start-up, as the join of a single process is).
    if (first === null && members > 1 && !await groupComplete(admin, opts.groupId, members)) {
      if (t - started > (opts.startTimeoutS ?? 120) * 1000) {
        throw new Error(
          `The ${members} consumers were not all in the group within the start timeout`,
        );
      }
      await new Promise((r) => setTimeout(r, 50));
      continue;
    }
    if (n > 0 && (last === null || n > last.n)) {
      // CPU is read at the first commit and at the end only: reading it costs a process spawn.
      const sample: Sample = {
        t,
        n,
        cpu: first === null || n >= opts.total ? await cpuOf() : NaN,
      };
      first ??= sample;
      last = sample;
    }
    if (first === null && t - started > (opts.startTimeoutS ?? 120) * 1000) {
      throw new Error(`The consumer committed nothing within ${opts.startTimeoutS ?? 120} s`);
    }
    if (t - lastReport > 2000) {
      opts.onProgress?.(n);
      lastReport = t;
    }
    if (n >= opts.total) break;
    if (first !== null && last !== null && t - first.t > opts.limitS * 1000) {
      last.cpu = await cpuOf();
      break;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  let peak = 0;
  for (const c of children) peak = Math.max(peak, (await memoryMiB(c.pid)).peak);
  const seconds = (last!.t - first!.t) / 1000;
  const events = last!.n - first!.n;
  const cpu = last!.cpu - first!.cpu;
  return {
    events,
    seconds,
    events_per_s: seconds > 0 ? events / seconds : 0,
    cpu_cores: seconds > 0 ? cpu / seconds : 0,
    cpu_us_per_event: events > 0 ? (cpu / events) * 1e6 : 0,
    peak_rss_mib: peak,
    caught_up: last!.n >= opts.total,
  };
}

async function groupComplete(admin: Admin, groupId: string, members: number): Promise<boolean> {
  const { groups } = await admin.describeGroups([groupId]);
  return groups[0]?.state === "Stable" && groups[0].members.length >= members;
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
export async function stopProcess(child: Deno.ChildProcess, graceMs = 15_000): Promise<void> {
  try {
    child.kill("SIGTERM");
  } catch {
    return; // already gone
  }
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
  }, graceMs);
  await child.status;
  clearTimeout(timer);
}

/** p-th percentile (0..100) of the values, nearest rank: the engine's own (`p95` of a window). */
export function percentile(values: readonly number[], p: number): number {
  return nearestRank(values, p / 100);
}
