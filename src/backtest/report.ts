/**
 * The backtest's report: per rule, its episodes, alerts by state, time spent firing, time to fire
 * after the first breaching event, and its busiest sensors; the same data as JSON (`--json`), a text
 * table (a terminal) and the HTML page (html.ts).
 *
 * @module
 */
import { PRIORITIES, type Priority, type SensorAlert } from "../contract/schemas.ts";
import type { RuleSet } from "../rules/ruleset.ts";
import { visible } from "../terminal.ts";
import { diffEpisodes, type EpisodeDiff } from "./diff.ts";
import type { BacktestEpisode, EpisodeLog } from "./episodes.ts";
import { noiseOutcome, type RuleNoise, type RuleNotifications } from "./notifications.ts";
import type { Backtest, SideResult } from "./run.ts";
import type { Series } from "./series.ts";

export interface RuleReport {
  rule_id: string;
  kind: string;
  priority: Priority;
  /** The per-event threshold band, for the page's charts; null for a condition or a window's threshold. */
  band: { min: number | null; max: number | null } | null;
  episodes: number;
  /** Episodes still firing at the end of the input. */
  open: number;
  alerts: { firing: number; repeats: number; resolved: number };
  firing_seconds: number;
  /** From the first breaching event to the firing alert, over the episodes where it is known. */
  time_to_fire_seconds: { avg: number; max: number } | null;
  busiest: { group: string; sensor_id: string; episodes: number; firing_seconds: number }[];
  /** Flapping notices and escalation steps among its alerts. */
  noise: RuleNoise;
  /** Its alerts under the rule files' `inhibit:` and its `max_notifications`, in event time. */
  notifications: RuleNotifications;
}

export interface SideReport {
  rules_dir: string;
  rules: RuleReport[];
  totals: {
    episodes: number;
    alerts: number;
    /** Alerts by priority, then state (firing includes repeats). */
    by_priority: Partial<Record<Priority, { firing: number; resolved: number }>>;
  };
  episodes: EpisodeJson[];
  alerts: SensorAlert[];
}

export type EpisodeJson = Omit<BacktestEpisode, "start" | "end" | "first_breach"> & {
  start: string;
  end: string | null;
  first_breach: string | null;
  firing_seconds: number;
};

export interface BacktestReport {
  input: {
    source: string;
    records: number;
    events: number;
    duplicates: number;
    dead_lettered: number;
    late_events: number;
    /** Event time of the first and newest event. */
    from: string | null;
    to: string | null;
    /** Stopped before the end (Ctrl-C): the figures cover what was read. */
    interrupted: boolean;
    /** From the first batch read to the end of the input (start-up and the broker's answers left out). */
    seconds: number;
  };
  rules: RuleReport[];
  totals: SideReport["totals"];
  episodes: EpisodeJson[];
  alerts: SensorAlert[];
  rules_dir: string;
  /** `--against`: the second rule set's report and the difference of the episodes. */
  against?: SideReport & {
    diff: {
      rules: EpisodeDiff["rules"];
      only_a: EpisodeJson[];
      only_b: EpisodeJson[];
      changed: { a: EpisodeJson; b: EpisodeJson }[];
      same: number;
    };
  };
  /** For the page: the values of the sensors with episodes. Left out of `--json`. */
  series?: Series[];
}

const BUSIEST = 5;

export function buildReport(
  run: Backtest,
  sides: readonly { dir: string; ruleSet: RuleSet }[],
  { source, interrupted, seconds = 0 }: { source: string; interrupted: boolean; seconds?: number },
): BacktestReport {
  const reports = sides.map((s, i) => sideReport(s.dir, s.ruleSet, run.sides[i]!));
  const a = reports[0]!;
  const c = run.counters;
  const iso = (t: number) => Number.isFinite(t) ? new Date(t).toISOString() : null;
  const report: BacktestReport = {
    input: {
      source,
      records: run.records,
      events: c.accepted,
      duplicates: c.duplicates,
      dead_lettered: c.dead_lettered,
      late_events: c.late_events,
      from: iso(run.firstTime),
      to: iso(run.lastTime),
      interrupted,
      seconds,
    },
    rules_dir: a.rules_dir,
    rules: a.rules,
    totals: a.totals,
    episodes: a.episodes,
    alerts: a.alerts,
  };
  if (reports.length > 1) {
    const b = reports[1]!;
    const log = (i: number) => run.sides[i]!.episodes;
    const d = diffEpisodes(log(0).episodes, log(1).episodes, [
      ...sides[0]!.ruleSet.rules.map((r) => r.rule.id),
      ...sides[1]!.ruleSet.rules.map((r) => r.rule.id),
    ]);
    report.against = {
      ...b,
      diff: {
        rules: d.rules,
        only_a: d.only_a.map((e) => episodeJson(e, log(0))),
        only_b: d.only_b.map((e) => episodeJson(e, log(1))),
        changed: d.changed.map((x) => ({ a: episodeJson(x.a, log(0)), b: episodeJson(x.b, log(1)) })),
        same: d.same,
      },
    };
  }
  if (run.series !== null) {
    const ids = new Set(reports.flatMap((r) => r.episodes.map((e) => e.sensor_id)));
    report.series = [...ids].flatMap((id) => run.series!.get(id) ?? []);
  }
  return report;
}

function sideReport(dir: string, ruleSet: RuleSet, side: SideResult): SideReport {
  const log = side.episodes;
  const rules: RuleReport[] = ruleSet.rules.map((r) => {
    const t = r.rule.threshold;
    return {
      rule_id: r.rule.id,
      kind: r.kind,
      priority: r.rule.priority,
      band: t !== undefined && r.kind === "event" ? { min: t.min ?? null, max: t.max ?? null } : null,
      episodes: 0,
      open: 0,
      alerts: { firing: 0, repeats: 0, resolved: 0 },
      firing_seconds: 0,
      time_to_fire_seconds: null,
      busiest: [],
      noise: { flapping: 0, escalations: 0 },
      notifications: { sent: 0, inhibited: 0, held: 0, summaries: 0 },
    };
  });
  const byId = new Map(rules.map((r) => [r.rule_id, r]));
  const by_priority: SideReport["totals"]["by_priority"] = {};
  for (const a of side.alerts) {
    if (a.ack_update) continue;
    const r = byId.get(a.rule_id);
    const counts = by_priority[a.priority] ??= { firing: 0, resolved: 0 };
    counts[a.state]++;
    if (r === undefined) continue;
    if (a.state === "resolved") r.alerts.resolved++;
    else if ((a.repeat ?? 0) > 0) r.alerts.repeats++;
    else r.alerts.firing++;
  }
  const outcome = noiseOutcome(side.alerts, ruleSet);
  for (const r of rules) {
    r.noise = outcome.noise.get(r.rule_id) ?? r.noise;
    r.notifications = outcome.notifications.get(r.rule_id) ?? r.notifications;
  }
  const toFire = new Map<string, number[]>();
  const sensors = new Map<string, Map<string, RuleReport["busiest"][number]>>();
  for (const ep of log.episodes) {
    const r = byId.get(ep.rule_id);
    if (r === undefined) continue;
    const firing = log.firingMs(ep) / 1000;
    r.episodes++;
    if (ep.end === null) r.open++;
    r.firing_seconds += firing;
    if (ep.first_breach !== null) {
      let list = toFire.get(r.rule_id);
      if (list === undefined) toFire.set(r.rule_id, list = []);
      list.push((ep.start - ep.first_breach) / 1000);
    }
    let groups = sensors.get(r.rule_id);
    if (groups === undefined) sensors.set(r.rule_id, groups = new Map());
    let g = groups.get(ep.group);
    if (g === undefined) {
      groups.set(ep.group, g = { group: ep.group, sensor_id: ep.sensor_id, episodes: 0, firing_seconds: 0 });
    }
    g.episodes++;
    g.firing_seconds += firing;
  }
  for (const r of rules) {
    const list = toFire.get(r.rule_id);
    if (list !== undefined && list.length > 0) {
      r.time_to_fire_seconds = {
        avg: list.reduce((s, x) => s + x, 0) / list.length,
        max: Math.max(...list),
      };
    }
    r.busiest = [...(sensors.get(r.rule_id)?.values() ?? [])]
      .sort((x, y) => y.episodes - x.episodes || y.firing_seconds - x.firing_seconds)
      .slice(0, BUSIEST);
  }
  const ordered = Object.fromEntries(
    PRIORITIES.filter((p) => by_priority[p] !== undefined).map((p) => [p, by_priority[p]!]),
  );
  return {
    rules_dir: dir,
    rules,
    totals: { episodes: log.episodes.length, alerts: side.alerts.length, by_priority: ordered },
    episodes: log.episodes.map((e) => episodeJson(e, log)),
    alerts: side.alerts,
  };
}

function episodeJson(ep: BacktestEpisode, log: EpisodeLog): EpisodeJson {
  const iso = (t: number | null) => t === null ? null : new Date(t).toISOString();
  return {
    ...ep,
    start: new Date(ep.start).toISOString(),
    end: iso(ep.end),
    first_breach: iso(ep.first_breach),
    firing_seconds: log.firingMs(ep) / 1000,
  };
}

/** `4530` → `1h15m30s`. */
export function seconds(s: number): string {
  if (s < 1) return s === 0 ? "0s" : `${Math.round(s * 1000)}ms`;
  let rest = Math.round(s);
  const parts: string[] = [];
  for (const [unit, size] of [["d", 86400], ["h", 3600], ["m", 60], ["s", 1]] as const) {
    const q = Math.floor(rest / size);
    if (q > 0) parts.push(`${q}${unit}`);
    rest -= q * size;
  }
  return parts.join("");
}

/** The report as text for a terminal; what comes from events (sensor ids) cannot act on it. */
export function formatText(report: BacktestReport): string {
  return _formatLines(report).map(visible).join("\n");
}

function _formatLines(report: BacktestReport): string[] {
  const i = report.input;
  const lines: string[] = [];
  lines.push(
    `Backtest of ${i.source}: ${i.records} records, ${i.events} events` +
      (i.from !== null ? ` from ${i.from} to ${i.to}` : "") +
      `; ${i.duplicates} duplicates, ${i.dead_lettered} dead-lettered, ${i.late_events} late` +
      (i.interrupted ? " (interrupted: what was read so far)" : ""),
  );
  lines.push("");
  lines.push(`Rules: ${report.rules_dir}`);
  lines.push(...ruleTable(report.rules));
  lines.push("", ...notificationTable(report.rules));
  if (report.against !== undefined) {
    const b = report.against;
    lines.push("", `Against: ${b.rules_dir}`);
    lines.push(...ruleTable(b.rules));
    lines.push("", ...notificationTable(b.rules));
    lines.push("", `Difference (A: ${report.rules_dir}, B: ${b.rules_dir}), by rule id and group:`);
    lines.push(
      ...table(
        ["RULE", "A", "B", "ONLY IN A", "ONLY IN B", "CHANGED", "SAME"],
        b.diff.rules.map((r) => [r.rule_id, r.a, r.b, r.only_a, r.only_b, r.changed, r.same].map(String)),
      ),
    );
    const at = (e: EpisodeJson) => `${e.rule_id} ${e.group} ${e.start} .. ${e.end ?? "(open)"}`;
    for (const e of b.diff.only_a) lines.push(`  - only in A: ${at(e)}`);
    for (const e of b.diff.only_b) lines.push(`  + only in B: ${at(e)}`);
    for (const c of b.diff.changed) {
      lines.push(`  ~ changed:   ${at(c.a)}  ->  ${c.b.start} .. ${c.b.end ?? "(open)"}`);
    }
  }
  return lines;
}

function ruleTable(rules: readonly RuleReport[]): string[] {
  return table(
    [
      "RULE",
      "PRIORITY",
      "EPISODES",
      "FIRING",
      "REPEATS",
      "RESOLVED",
      "TIME FIRING",
      "TO FIRE avg/max",
      "BUSIEST",
    ],
    rules.map((r) => [
      r.rule_id,
      r.priority,
      String(r.episodes) + (r.open > 0 ? ` (${r.open} open)` : ""),
      String(r.alerts.firing),
      String(r.alerts.repeats),
      String(r.alerts.resolved),
      seconds(r.firing_seconds),
      r.time_to_fire_seconds === null
        ? "-"
        : `${seconds(r.time_to_fire_seconds.avg)}/${seconds(r.time_to_fire_seconds.max)}`,
      r.busiest.map((s) => `${s.group} (${s.episodes})`).join(", ") || "-",
    ]),
  );
}

/** Noise control per rule: what would have been notified of its alerts, and why not. */
function notificationTable(rules: readonly RuleReport[]): string[] {
  return [
    "Notifications (inhibit: and max_notifications applied in event time; no silences):",
    ...table(
      ["RULE", "SENT", "INHIBITED", "HELD", "SUMMARIES", "FLAPPING", "ESCALATIONS"],
      rules.map((r) => {
        const n = r.notifications;
        return [r.rule_id, n.sent, n.inhibited, n.held, n.summaries, r.noise.flapping, r.noise.escalations]
          .map(String);
      }),
    ),
  ];
}

function table(head: string[], rows: string[][]): string[] {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd();
  return [line(head), ...rows.map(line)];
}
