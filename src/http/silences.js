// Silences on the dashboard: a "Silence" action on each open alert, prefilled with its sensor and
// rule, and the silences panel (list, expire). Apart from dashboard.js: it decorates the alert rows
// that dashboard.js renders, and reads /api/silences and /api/alerts (whose `silenced_by` says which
// silences hold an alert, `inhibited_by` and `held_by_storm_guard` what else does) when the rows change
// and every few seconds.

import { $, el } from "./dom.js";

/** alert_id → the alert as /api/alerts shows it (with `silenced_by`, `inhibited_by`, `held_by_storm_guard`). */
let shown = new Map();
let refreshing = null;

/** A write to the API with the token of the session (asked for once on 401, as Ack does). */
async function write(method, path, body) {
  const headers = { "content-type": "application/json" };
  const token = sessionStorage.getItem("api-token");
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(path, {
    method,
    headers,
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  if (res.status === 401) {
    const t = prompt("API token (API_TOKEN of the service)");
    if (t) {
      sessionStorage.setItem("api-token", t);
      return write(method, path, body);
    }
  }
  const answer = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(answer.error ?? `${method} ${path} failed with status ${res.status}`);
  return answer;
}

/**
 * Tags each alert row with what holds it. A row whose tags are already right is not touched: rows
 * are kept across alerts messages, and rewriting them made the page lay out again.
 */
function decorate() {
  for (const row of document.querySelectorAll("#alerts .alert[data-alert-id]")) {
    const alert = shown.get(row.dataset.alertId);
    const by = alert?.silenced_by ?? [];
    const silenced = by.length > 0 ? `silenced by ${by.join(", ")}` : null;
    if (row.classList.contains("silenced") !== (silenced !== null)) row.classList.toggle("silenced");
    const tag = row.querySelector(".silenced-by");
    if ((tag?.textContent ?? null) !== silenced) {
      tag?.remove();
      if (silenced !== null) row.append(el("span", { class: "silenced-by" }, silenced));
    }
    // Inhibition and the storm guard (README, Noise control): absent where the notifier stage runs
    // in another process.
    const source = alert?.inhibited_by;
    const tags = [
      ...(source ? [["noise inhibited", `inhibited by ${source.rule_id} (${source.sensor_id})`]] : []),
      ...(alert?.held_by_storm_guard ? [["noise held", "held by storm guard"]] : []),
    ];
    const present = [...row.querySelectorAll(".noise.inhibited, .noise.held")];
    const same = present.length === tags.length &&
      present.every((n, i) => n.className === tags[i][0] && n.textContent === tags[i][1]);
    if (!same) {
      for (const n of present) n.remove();
      const msg = row.querySelector(".msg") ?? row;
      for (const [cls, text] of tags) msg.append(el("span", { class: cls }, text));
    }
    if (row.querySelector("button.silence") === null) {
      row.append(el("button", { class: "silence", onclick: () => openForm(row.dataset.alertId) }, "Silence"));
    }
  }
}

/** amtool's operators: `=`, `!=`, `=~`, `!~`. */
const operator = (m) => m.is_regex ? (m.is_equal ? "=~" : "!~") : (m.is_equal ? "=" : "!=");

function renderSilences(silences) {
  const list = silences.filter((s) => s.status !== "expired");
  const root = $("silences");
  if (list.length === 0) return root.replaceChildren(el("p", { class: "muted" }, "None"));
  root.replaceChildren(...list.map((s) =>
    el(
      "div",
      { class: `silence-row ${s.status}`, "data-silence-id": s.id },
      el(
        "span",
        { class: "matchers" },
        s.matchers.map((m) => `${m.name}${operator(m)}"${m.value}"`).join(
          ", ",
        ),
      ),
      el("button", { class: "expire", onclick: () => expire(s.id) }, "Expire"),
      el(
        "span",
        { class: "muted meta" },
        `${s.status} until ${new Date(s.ends_at).toLocaleString()} · ${s.created_by}: ${s.comment}`,
      ),
    )
  ));
}

async function refresh() {
  const [silences, alerts] = await Promise.all([fetch("/api/silences"), fetch("/api/alerts")]);
  if (silences.ok) renderSilences((await silences.json()).silences);
  if (alerts.ok) {
    const { active } = await alerts.json();
    shown = new Map(active.map((a) => [a.alert_id, a]));
  }
  decorate();
}

/** One refresh at a time; a call during one runs once more after it. */
function scheduleRefresh() {
  refreshing ??= refresh().catch(() => {}).finally(() => refreshing = null);
  return refreshing;
}

function openForm(alertId) {
  const alert = shown.get(alertId);
  const form = $("silence-form");
  form.hidden = false;
  form.dataset.alertId = alertId;
  $("silence-sensor").value = alert?.sensor_id ?? "";
  $("silence-rule").value = alert?.rule_id ?? "";
  $("silence-by").value = localStorage.getItem("silence-by") ?? "";
  $("silence-comment").value = "";
  $("silence-by").value === "" ? $("silence-by").focus() : $("silence-comment").focus();
}

async function submitForm() {
  const matchers = [];
  const sensor = $("silence-sensor").value.trim();
  const rule = $("silence-rule").value.trim();
  if (sensor !== "") matchers.push({ name: "sensor_id", value: sensor });
  if (rule !== "") matchers.push({ name: "rule_id", value: rule });
  const by = $("silence-by").value.trim();
  const hours = Number($("silence-hours").value);
  try {
    await write("POST", "/api/silences", {
      matchers,
      ends_at: new Date(Date.now() + hours * 3600_000).toISOString(),
      created_by: by,
      comment: $("silence-comment").value.trim(),
    });
  } catch (err) {
    $("silence-error").textContent = err.message;
    return;
  }
  localStorage.setItem("silence-by", by);
  $("silence-error").textContent = "";
  $("silence-form").hidden = true;
  await scheduleRefresh();
}

async function expire(id) {
  try {
    await write("DELETE", `/api/silences/${encodeURIComponent(id)}`);
    $("silence-error").textContent = "";
  } catch (err) {
    $("silence-error").textContent = err.message;
  }
  await scheduleRefresh();
}

$("silence-submit").addEventListener("click", submitForm);
$("silence-cancel").addEventListener("click", () => $("silence-form").hidden = true);
// dashboard.js replaces the rows when alerts change: add the action to the new ones at once, and
// read which are silenced.
new MutationObserver(() => {
  decorate();
  scheduleRefresh();
}).observe($("alerts"), { childList: true });
setInterval(scheduleRefresh, 5000);
scheduleRefresh();
