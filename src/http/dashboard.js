// The dashboard: plain browser JavaScript, no build step. State arrives over /api/stream (SSE);
// the only write is the Ack button.

import { $, el, renderKeyed } from "./dom.js";
import { FleetView } from "./fleet.js";

const fleet = new FleetView();
const alerts = new Map();
const PRIORITY_RANK = { low: 0, normal: 1, high: 2, critical: 3 };

function renderAlerts() {
  const open = [...alerts.values()].filter((a) => a.state === "firing")
    .sort((a, b) =>
      PRIORITY_RANK[b.priority] - PRIORITY_RANK[a.priority] || b.timestamp.localeCompare(a.timestamp)
    );
  $("open").textContent = String(open.length);
  const root = $("alerts");
  if (open.length === 0) return root.replaceChildren(el("p", { class: "muted" }, "None"));
  renderKeyed(root, open, (a) => JSON.stringify(a), (a) =>
    el(
      "div",
      { class: `alert${a.acknowledged ? " acknowledged" : ""}`, "data-alert-id": a.alert_id },
      el("span", { class: `prio ${a.priority}` }, a.priority),
      el("span", { class: "msg" }, a.message, ...noiseTags(a)),
      a.acknowledged
        ? el("span", { class: "acked" }, "✓ acknowledged")
        : el("button", { class: "ack", onclick: () => ack(a.alert_id) }, "Ack"),
      el("span", { class: "muted meta" }, `${a.rule_id} · ${new Date(a.timestamp).toLocaleTimeString()}`),
    ));
}

/** Flap detection and escalation (README, Noise control), as tags after the message. */
function noiseTags(a) {
  const tags = [];
  if (a.flapping === true) tags.push("flapping");
  if (a.escalation > 0) tags.push(`escalated ×${a.escalation}`);
  return tags.map((t) => el("span", { class: "noise" }, t));
}

function renderRules(r) {
  const rows = [
    el("div", {}, `${r.loaded} rules loaded from `, el("code", {}, r.dir), r.ok ? " ✓" : ""),
    el(
      "div",
      { class: "muted" },
      `last good reload ${r.last_good_reload ? new Date(r.last_good_reload).toLocaleTimeString() : "never"}` +
        ` · reload errors ${r.reload_errors}`,
    ),
    ...r.errors.map((e) => el("div", { class: "problem" }, e.text)),
  ];
  $("rules").replaceChildren(...rows);
}

function renderStats(s) {
  $("mode").textContent = s.mode;
  $("rate").textContent = String(s.events_per_second);
  $("events").textContent = String(s.events);
  const ready = $("ready");
  ready.textContent = s.ready ? "ready" : "not ready";
  ready.className = `badge ${s.ready ? "ready" : "down"}`;
  $("lag").textContent = s.lag.length === 0 ? "–" : String(s.lag_total);
  if (s.lag.length > 0) {
    $("lag-table").replaceChildren(el(
      "table",
      {},
      el("tr", {}, el("th", {}, "group"), el("th", {}, "partition"), el("th", {}, "lag")),
      ...s.lag.map((l) =>
        el(
          "tr",
          {},
          el("td", {}, l.group),
          el("td", {}, `${l.topic}/${l.partition}`),
          el("td", {}, String(l.lag)),
        )
      ),
    ));
  }
}

async function ack(alertId) {
  const headers = { "content-type": "application/json" };
  const token = sessionStorage.getItem("api-token");
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(`/api/alerts/${encodeURIComponent(alertId)}/ack`, {
    method: "POST",
    headers,
    body: JSON.stringify({ by: "dashboard" }),
  });
  if (res.status === 401) {
    const t = prompt("API token (API_TOKEN of the service)");
    if (t) {
      sessionStorage.setItem("api-token", t);
      return ack(alertId);
    }
    return;
  }
  const body = await res.json();
  if (!res.ok) {
    $("error").textContent = body.error ?? `Ack failed with status ${res.status}`;
    return;
  }
  $("error").textContent = "";
  alerts.set(alertId, body.alert);
  renderAlerts();
}

function connect() {
  const stream = new EventSource("/api/stream");
  stream.addEventListener("open", () => $("error").textContent = "");
  stream.addEventListener("error", () => {
    $("error").textContent = "Disconnected: reconnecting…";
    $("ready").textContent = "disconnected";
    $("ready").className = "badge down";
    // EventSource retries a dropped connection by itself, but gives up for good on an error status
    // (503 while the service starts): then open a new one.
    if (stream.readyState === EventSource.CLOSED) setTimeout(connect, 2000);
  });
  // A (re)connect starts with the full picture: forget what may have resolved meanwhile.
  stream.addEventListener("hello", () => alerts.clear());
  stream.addEventListener("stats", (m) => renderStats(JSON.parse(m.data)));
  stream.addEventListener("sensors", (m) => fleet.receive(m.data));
  stream.addEventListener("alerts", (m) => {
    for (const a of JSON.parse(m.data).alerts) {
      if (a.state === "resolved") {
        alerts.delete(a.alert_id);
        continue;
      }
      const known = alerts.get(a.alert_id);
      // An acknowledgement is sticky: a later copy of the same episode keeps it.
      alerts.set(a.alert_id, known?.acknowledged && !a.acknowledged ? { ...a, acknowledged: true } : a);
    }
    renderAlerts();
  });
  stream.addEventListener("rules", (m) => renderRules(JSON.parse(m.data)));
}

connect();
