// The dashboard's "What if": the YAML text of one rule, run by the service over recent events (with
// Kafka the events topic's last hour; POST /api/whatif). Its own file, so the dashboard's script stays
// as it is.

import { $, el } from "./dom.js";

const seconds = (s) =>
  s >= 3600 ? `${(s / 3600).toFixed(1)} h` : s >= 60 ? `${(s / 60).toFixed(1)} min` : `${Math.round(s)} s`;

async function run() {
  const out = $("whatif-result");
  const headers = { "content-type": "application/json" };
  const token = sessionStorage.getItem("api-token");
  if (token) headers.authorization = `Bearer ${token}`;
  out.replaceChildren(el("p", { class: "muted" }, "Running…"));
  const res = await fetch("/api/whatif", {
    method: "POST",
    headers,
    body: JSON.stringify({ rule: $("whatif-rule").value }),
  });
  if (res.status === 401) {
    const t = prompt("API token (API_TOKEN of the service)");
    if (t) {
      sessionStorage.setItem("api-token", t);
      return run();
    }
  }
  const body = await res.json();
  if (!res.ok) {
    out.replaceChildren(el("div", { class: "problem" }, body.error ?? `Failed with status ${res.status}`));
    return;
  }
  const { history: h, report } = body;
  const r = report.rules[0];
  const cut = [h.capped && "capped by count", h.timed_out && "cut short by the time limit"].filter(Boolean);
  const span = h.from ? [`${h.from.slice(11, 19)} to ${h.to.slice(11, 19)} UTC`] : [];
  const notes = [...span, ...cut].join(", ");
  const summary =
    `Over ${h.events} ${h.source === "topic" ? "events of the events topic" : "recent events"}` +
    (notes ? ` (${notes})` : "") +
    `: ${r.episodes} episode${
      r.episodes === 1 ? "" : "s"
    }, ${r.alerts.firing} firing, ${r.alerts.repeats} repeats, ` +
    `${r.alerts.resolved} resolved, ${seconds(r.firing_seconds)} firing in all.`;
  const table = el("table", { class: "whatif-episodes" });
  table.append(el("tr"));
  table.rows[0].append(
    el("th", {}, "Group"),
    el("th", {}, "Fired"),
    el("th", {}, "Resolved"),
    el("th", {}, "Firing"),
  );
  for (const e of report.episodes.slice(0, 50)) {
    const tr = el("tr", { class: "whatif-episode" });
    tr.append(
      el("td", {}, e.group),
      el("td", {}, e.start.slice(11, 19)),
      el("td", {}, e.end ? e.end.slice(11, 19) : "still firing"),
      el("td", {}, seconds(e.firing_seconds)),
    );
    table.append(tr);
  }
  out.replaceChildren(el("p", { id: "whatif-summary" }, summary), table);
}

$("whatif-run").addEventListener("click", () => {
  run().catch((err) => $("whatif-result").replaceChildren(el("div", { class: "problem" }, String(err))));
});
