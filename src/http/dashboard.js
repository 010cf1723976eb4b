// The dashboard: plain browser JavaScript, no build step. State arrives over /api/stream (SSE);
// the only write is the Ack button.

const $ = (id) => document.getElementById(id);
const sensors = new Map();
const alerts = new Map();
const PRIORITY_RANK = { low: 0, normal: 1, high: 2, critical: 3 };

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

const fmt = (v) => Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(1);

/** An inline SVG sparkline; the shaded band is the rule's allowed range. */
function sparkline(values, threshold) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 100 40");
  svg.setAttribute("preserveAspectRatio", "none");
  if (values.length === 0) return svg;
  const bounds = [...values];
  if (threshold?.min != null) bounds.push(threshold.min);
  if (threshold?.max != null) bounds.push(threshold.max);
  let lo = Math.min(...bounds);
  let hi = Math.max(...bounds);
  if (hi === lo) [lo, hi] = [lo - 1, hi + 1];
  const pad = (hi - lo) * 0.08;
  lo -= pad;
  hi += pad;
  const y = (v) => 40 - ((v - lo) / (hi - lo)) * 40;
  if (threshold) {
    const top = threshold.max != null ? y(threshold.max) : 0;
    const bottom = threshold.min != null ? y(threshold.min) : 40;
    const band = document.createElementNS(ns, "rect");
    band.setAttribute("x", "0");
    band.setAttribute("width", "100");
    band.setAttribute("y", String(top));
    band.setAttribute("height", String(Math.max(0, bottom - top)));
    band.setAttribute("fill", "var(--band)");
    svg.append(band);
  }
  const step = values.length > 1 ? 100 / (values.length - 1) : 0;
  const line = document.createElementNS(ns, "polyline");
  line.setAttribute("points", values.map((v, i) => `${(i * step).toFixed(1)},${y(v).toFixed(1)}`).join(" "));
  line.setAttribute("fill", "none");
  line.setAttribute("stroke", "currentColor");
  line.setAttribute("stroke-width", "1.5");
  line.setAttribute("vector-effect", "non-scaling-stroke");
  svg.append(line);
  return svg;
}

function renderSensors() {
  const root = $("sensors");
  if (sensors.size === 0) return;
  root.replaceChildren(
    ...[...sensors.values()].sort((a, b) => a.sensor_id.localeCompare(b.sensor_id)).map((s) =>
      el(
        "div",
        { class: "sensor", "data-sensor": s.sensor_id, "data-state": s.state },
        el("div", { class: "id" }, s.sensor_id),
        el("div", { class: "type" }, `${s.sensor_type}${s.location ? ` · ${s.location}` : ""}`),
        el("div", { class: "value" }, `${fmt(s.last_value)} `, el("span", { class: "muted" }, s.unit)),
        sparkline(s.recent, s.threshold),
        el(
          "div",
          { class: "muted" },
          `avg ${s.avg == null ? "–" : fmt(s.avg)} · min ${s.min == null ? "–" : fmt(s.min)} · max ${
            s.max == null ? "–" : fmt(s.max)
          } · n ${s.count}`,
        ),
      )
    ),
  );
}

function renderAlerts() {
  const open = [...alerts.values()].filter((a) => a.state === "firing")
    .sort((a, b) =>
      PRIORITY_RANK[b.priority] - PRIORITY_RANK[a.priority] || b.timestamp.localeCompare(a.timestamp)
    );
  $("open").textContent = String(open.length);
  const root = $("alerts");
  if (open.length === 0) return root.replaceChildren(el("p", { class: "muted" }, "None"));
  root.replaceChildren(...open.map((a) =>
    el(
      "div",
      { class: `alert${a.acknowledged ? " acknowledged" : ""}`, "data-alert-id": a.alert_id },
      el("span", { class: `prio ${a.priority}` }, a.priority),
      el("span", { class: "msg" }, a.message, ...noiseTags(a)),
      a.acknowledged
        ? el("span", { class: "acked" }, "✓ acknowledged")
        : el("button", { class: "ack", onclick: () => ack(a.alert_id) }, "Ack"),
      el("span", { class: "muted meta" }, `${a.rule_id} · ${new Date(a.timestamp).toLocaleTimeString()}`),
    )
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
  stream.addEventListener("sensors", (m) => {
    for (const s of JSON.parse(m.data)) sensors.set(s.sensor_id, s);
    renderSensors();
  });
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
