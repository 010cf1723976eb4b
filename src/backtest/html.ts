/**
 * The backtest's page: one HTML file, no script, no network, no build step. Per rule, a row per
 * sensor (group) with its episodes on a common time axis, and under it the sensor's values with the
 * rule's threshold band; with `--against`, A's episodes above B's and the difference table.
 *
 * @module
 */
import type { BacktestReport, EpisodeJson, RuleReport } from "./report.ts";
import { seconds } from "./report.ts";
import type { Series } from "./series.ts";

/** Rows drawn per rule: its busiest groups; the JSON has them all. */
const MAX_ROWS = 40;
const WIDTH = 900;
const LANE = 14;
const CHART = 56;

export function renderHtml(report: BacktestReport): string {
  const from = Date.parse(report.input.from ?? "") || 0;
  const to = Math.max(Date.parse(report.input.to ?? "") || 0, from + 1);
  const x = (t: number) => ((Math.min(Math.max(t, from), to) - from) / (to - from)) * WIDTH;
  const series = new Map((report.series ?? []).map((s) => [s.sensor_id, s]));
  const b = report.against;
  const bRules = new Map((b?.rules ?? []).map((r) => [r.rule_id, r]));
  const ruleIds = [
    ...new Set([...report.rules.map((r) => r.rule_id), ...(b?.rules ?? []).map((r) => r.rule_id)]),
  ];
  const sections = ruleIds.map((id) => {
    const ra = report.rules.find((r) => r.rule_id === id);
    const rb = bRules.get(id);
    const epsA = report.episodes.filter((e) => e.rule_id === id);
    const epsB = b === undefined ? [] : b.episodes.filter((e) => e.rule_id === id);
    return ruleSection(id, ra, rb, epsA, epsB, b !== undefined, series, x);
  });
  const i = report.input;
  const title = b === undefined
    ? `Backtest of ${report.rules_dir}`
    : `Backtest: ${report.rules_dir} against ${b.rules_dir}`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>${esc(title)}</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #1d2430; }
h1 { font-size: 1.3rem; } h2 { font-size: 1.1rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: .5rem 0 1rem; }
th, td { padding: .2rem .6rem; border-bottom: 1px solid #dde; text-align: left; }
td.n { text-align: right; }
.row { display: flex; align-items: flex-start; gap: .5rem; margin: .2rem 0; }
.label { width: 14rem; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; font-family: monospace; }
svg { background: #fafbfc; border: 1px solid #e3e6ea; }
.episode.a { fill: #d9534f; } .episode.b { fill: #337ab7; }
.band { fill: #5cb85c; fill-opacity: .15; }
.values { fill: none; stroke: #444; stroke-width: 1; }
.axis { font: 11px monospace; fill: #667; }
.legend span { display: inline-block; width: .8rem; height: .8rem; margin: 0 .3rem 0 1rem; vertical-align: middle; }
</style>
</head>
<body>
<h1>${esc(title)}</h1>
<p>${esc(i.source)}: ${i.records} records, ${i.events} events${
    i.from !== null ? `, event time ${esc(i.from)} to ${esc(i.to ?? "")}` : ""
  }; ${i.duplicates} duplicates, ${i.dead_lettered} dead-lettered, ${i.late_events} late.${
    i.interrupted ? " <strong>Interrupted: what was read so far.</strong>" : ""
  }</p>
<p class="legend">Episodes<span style="background:#d9534f"></span>${esc(report.rules_dir)}${
    b !== undefined ? `<span style="background:#337ab7"></span>${esc(b.rules_dir)}` : ""
  }<span style="background:#5cb85c;opacity:.4"></span>threshold band</p>
${summaryTable(report.rules, "Rules")}
${notificationTable(report.rules, "Notifications")}
${
    b !== undefined
      ? summaryTable(b.rules, `Against ${b.rules_dir}`) +
        notificationTable(b.rules, `Notifications against ${b.rules_dir}`) + diffTable(report)
      : ""
  }
${sections.join("\n")}
</body>
</html>
`;
}

function summaryTable(rules: readonly RuleReport[], caption: string): string {
  const rows = rules.map((r) =>
    `<tr><td>${
      esc(r.rule_id)
    }</td><td>${r.priority}</td><td class="n">${r.episodes}</td><td class="n">${r.alerts.firing}</td><td class="n">${r.alerts.repeats}</td><td class="n">${r.alerts.resolved}</td><td class="n">${
      seconds(r.firing_seconds)
    }</td><td class="n">${
      r.time_to_fire_seconds === null
        ? "-"
        : `${seconds(r.time_to_fire_seconds.avg)} / ${seconds(r.time_to_fire_seconds.max)}`
    }</td><td>${esc(r.busiest.map((s) => `${s.group} (${s.episodes})`).join(", "))}</td></tr>`
  );
  return `<table class="summary"><caption>${esc(caption)}</caption>
<tr><th>Rule</th><th>Priority</th><th>Episodes</th><th>Firing</th><th>Repeats</th><th>Resolved</th><th>Time firing</th><th>To fire avg / max</th><th>Busiest</th></tr>
${rows.join("\n")}</table>`;
}

/** Noise control per rule, as the text report's second table. */
function notificationTable(rules: readonly RuleReport[], caption: string): string {
  const rows = rules.map((r) => {
    const n = r.notifications;
    const cells = [n.sent, n.inhibited, n.held, n.summaries, r.noise.flapping, r.noise.escalations];
    return `<tr><td>${esc(r.rule_id)}</td>${cells.map((c) => `<td class="n">${c}</td>`).join("")}</tr>`;
  });
  return `<table class="notifications"><caption>${
    esc(caption)
  } (inhibit: and max_notifications in event time; no silences)</caption>
<tr><th>Rule</th><th>Sent</th><th>Inhibited</th><th>Held</th><th>Summaries</th><th>Flapping notices</th><th>Escalations</th></tr>
${rows.join("\n")}</table>`;
}

function diffTable(report: BacktestReport): string {
  const d = report.against!.diff;
  const rows = d.rules.map((r) =>
    `<tr><td>${esc(r.rule_id)}</td>${
      [r.a, r.b, r.only_a, r.only_b, r.changed, r.same].map((n) => `<td class="n">${n}</td>`).join("")
    }</tr>`
  );
  const at = (e: EpisodeJson) => `${esc(e.group)} ${esc(e.start)} .. ${esc(e.end ?? "open")}`;
  const items = [
    ...d.only_a.map((e) => `<li class="only-a">only in A: ${esc(e.rule_id)} ${at(e)}</li>`),
    ...d.only_b.map((e) => `<li class="only-b">only in B: ${esc(e.rule_id)} ${at(e)}</li>`),
    ...d.changed.map((c) =>
      `<li class="changed">changed: ${esc(c.a.rule_id)} ${at(c.a)} → ${esc(c.b.start)} .. ${
        esc(c.b.end ?? "open")
      }</li>`
    ),
  ];
  return `<h2>Difference</h2><table class="diff">
<tr><th>Rule</th><th>A</th><th>B</th><th>Only in A</th><th>Only in B</th><th>Changed</th><th>Same</th></tr>
${rows.join("\n")}</table><ul>${items.join("\n")}</ul>`;
}

function ruleSection(
  id: string,
  ra: RuleReport | undefined,
  rb: RuleReport | undefined,
  epsA: readonly EpisodeJson[],
  epsB: readonly EpisodeJson[],
  against: boolean,
  series: ReadonlyMap<string, Series>,
  x: (t: number) => number,
): string {
  const groups = new Map<string, { sensor_id: string; a: EpisodeJson[]; b: EpisodeJson[] }>();
  for (const [side, list] of [["a", epsA], ["b", epsB]] as const) {
    for (const e of list) {
      let g = groups.get(e.group);
      if (g === undefined) groups.set(e.group, g = { sensor_id: e.sensor_id, a: [], b: [] });
      g[side].push(e);
    }
  }
  const ordered = [...groups.entries()].sort((p, q) =>
    q[1].a.length + q[1].b.length - (p[1].a.length + p[1].b.length)
  );
  const band = (ra ?? rb)?.band ?? null;
  const rows = ordered.slice(0, MAX_ROWS).map(([group, g]) => {
    const lanes = against ? 2 : 1;
    const bars = (list: EpisodeJson[], side: "a" | "b", lane: number) =>
      list.map((e) => {
        const x0 = x(Date.parse(e.start));
        const x1 = e.end === null ? x(Infinity) : x(Date.parse(e.end));
        return `<rect class="episode ${side}" data-rule="${esc(id)}" data-group="${esc(group)}" x="${
          x0.toFixed(1)
        }" y="${lane * LANE + 2}" width="${Math.max(1.5, x1 - x0).toFixed(1)}" height="${LANE - 4}"><title>${
          esc(`${e.start} .. ${e.end ?? "still firing"} (${seconds(e.firing_seconds)}), value ${e.value}`)
        }</title></rect>`;
      }).join("");
    const timeline = `<svg class="timeline" width="${WIDTH}" height="${lanes * LANE}" viewBox="0 0 ${WIDTH} ${
      lanes * LANE
    }">${bars(g.a, "a", 0)}${against ? bars(g.b, "b", 1) : ""}</svg>`;
    const s = series.get(g.sensor_id);
    return `<div class="row"><div class="label" title="${esc(group)}">${
      esc(group)
    }</div><div>${timeline}<br>${s === undefined ? "" : valuesChart(s, band, x)}</div></div>`;
  });
  const more = ordered.length > MAX_ROWS
    ? `<p>${ordered.length - MAX_ROWS} more groups with episodes: see the JSON report.</p>`
    : "";
  const counts = against
    ? `${epsA.length} episodes in A, ${epsB.length} in B`
    : `${epsA.length} episode${epsA.length === 1 ? "" : "s"}`;
  return `<section class="rule" data-rule="${esc(id)}"><h2>${esc(id)}</h2><p>${counts}${
    band !== null ? `; threshold band ${band.min ?? "-∞"} .. ${band.max ?? "∞"}` : ""
  }</p>${rows.join("\n")}${more}</section>`;
}

/** The sensor's values, with the band inside which the rule does not fire shaded. */
function valuesChart(
  s: Series,
  band: { min: number | null; max: number | null } | null,
  x: (t: number) => number,
): string {
  let lo = Infinity;
  let hi = -Infinity;
  for (const [, v] of s.points) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (band?.min != null) lo = Math.min(lo, band.min), hi = Math.max(hi, band.min);
  if (band?.max != null) lo = Math.min(lo, band.max), hi = Math.max(hi, band.max);
  if (!Number.isFinite(lo)) return "";
  if (hi === lo) hi = lo + 1;
  const pad = (hi - lo) * 0.08;
  lo -= pad;
  hi += pad;
  const y = (v: number) => CHART - ((v - lo) / (hi - lo)) * CHART;
  // Late events arrive after newer ones: the line follows event time, not arrival.
  const path = [...s.points].sort((p, q) => p[0] - q[0]).map(([t, v]) =>
    `${x(t).toFixed(1)},${y(v).toFixed(1)}`
  ).join(" ");
  let shade = "";
  if (band !== null && (band.min !== null || band.max !== null)) {
    const top = y(band.max ?? hi);
    const bottom = y(band.min ?? lo);
    shade = `<rect class="band" x="0" y="${top.toFixed(1)}" width="${WIDTH}" height="${
      Math.max(0, bottom - top).toFixed(1)
    }"/>`;
  }
  return `<svg class="chart" width="${WIDTH}" height="${CHART}" viewBox="0 0 ${WIDTH} ${CHART}">${shade}<polyline class="values" points="${path}"/><text class="axis" x="2" y="10">${
    fmt(hi - pad)
  } ${esc(s.unit)}</text><text class="axis" x="2" y="${CHART - 2}">${fmt(lo + pad)}</text></svg>`;
}

function fmt(v: number): string {
  return Number.isInteger(v) ? String(v) : v.toFixed(2);
}

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
