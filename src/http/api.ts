/**
 * The JSON views of `/api/*` and the acknowledgement action, built from the stages' state at
 * request time (the registry may have reloaded, the tracker moved on since the last request).
 *
 * @module
 */
import { PRIORITIES, type SensorAlert, type SensorEvent } from "../contract/schemas.ts";
import type { NotificationStatus } from "../notifiers/dispatcher.ts";
import type { NotifierConfigStatus } from "../notifiers/registry.ts";
import { formatProblem } from "../rules/load.ts";
import type { LimitsOrigin } from "../rules/limits.ts";
import type { RuleRegistry } from "../rules/registry.ts";
import type { Service } from "../service.ts";
import { average } from "../stats/stats.ts";
import type { LiveFeed } from "./live.ts";

export interface SensorView {
  sensor_id: string;
  sensor_type: string;
  unit: string;
  location: string | null;
  count: number;
  avg: number | null;
  min: number | null;
  max: number | null;
  last_value: number;
  last_update: string;
  recent: number[];
  /** The band of the first per-event threshold rule for this sensor, for the sparkline. */
  threshold: { min: number | null; max: number | null; rule: string } | null;
  /** The band each `limits:` rule applies to this sensor, and where it came from (table, level, file:line). */
  limits: ({ rule: string } & LimitsOrigin)[];
  /** ok, or the highest priority of its open alerts. */
  state: string;
}

export function sensorsView(service: Service, ids?: ReadonlySet<string>): SensorView[] {
  const p = service.pipeline;
  if (p === null) return [];
  const ruleSet = service.registry.ruleSet;
  const worst = new Map<string, number>();
  for (const ep of p.tracker.active()) {
    if (ep.alert === null) continue;
    const rank = PRIORITIES.indexOf(ep.alert.priority);
    if (rank > (worst.get(ep.alert.sensor_id) ?? -1)) worst.set(ep.alert.sensor_id, rank);
  }
  const all = ids === undefined ? p.stats.all() : [...ids].flatMap((id) => p.stats.get(id) ?? []);
  return all.map((s) => {
    const probe = { sensor_id: s.sensor_id, sensor_type: s.sensor_type } as SensorEvent;
    const candidates = ruleSet.candidates(probe);
    const limits = candidates.flatMap((r) => {
      const band = r.limitsName === null
        ? null
        : ruleSet.limits.resolve(r.limitsName, s.sensor_id, s.location, s.sensor_type);
      if (band === null) return [];
      const { below: _b, above: _a, ...origin } = band;
      return [{ rule: r.rule.id, ...origin }];
    });
    // A window rule's threshold bounds an aggregate, not the raw values the sparkline draws.
    const banded = candidates.find((r) =>
      (r.rule.threshold !== undefined && (r.rule as { window?: unknown }).window === undefined) ||
      limits.some((l) => l.rule === r.rule.id)
    );
    const own = limits.find((l) => l.rule === banded?.rule.id);
    const t = own ?? banded?.rule.threshold;
    const rank = worst.get(s.sensor_id);
    return {
      sensor_id: s.sensor_id,
      sensor_type: s.sensor_type,
      unit: s.unit,
      location: s.location,
      count: s.count,
      avg: s.count === 0 ? null : average(s),
      min: Number.isFinite(s.min) ? s.min : null,
      max: Number.isFinite(s.max) ? s.max : null,
      last_value: s.last_value,
      last_update: new Date(s.last_update).toISOString(),
      recent: [...s.recent],
      threshold: t === undefined || banded === undefined
        ? null
        : { min: t.min ?? null, max: t.max ?? null, rule: banded.rule.id },
      limits,
      state: rank === undefined ? "ok" : PRIORITIES[rank]!,
    };
  });
}

export interface AlertFilter {
  priorities: ReadonlySet<string> | null;
  /** firing, resolved, acknowledged, silenced, inhibited or held (by the storm guard). */
  state: string | null;
}

/** Parses `?priority=high,critical&state=firing`; throws TypeError naming the bad value. */
const ALERT_STATES = ["firing", "resolved", "acknowledged", "silenced", "inhibited", "held"];

export function parseAlertFilter(params: URLSearchParams): AlertFilter {
  const priority = params.get("priority");
  const priorities = priority === null || priority === ""
    ? null
    : new Set(priority.split(",").map((s) => s.trim()));
  for (const p of priorities ?? []) {
    if (!(PRIORITIES as readonly string[]).includes(p)) {
      throw new TypeError(`"priority" must be one of ${PRIORITIES.join(", ")}, got "${p}"`);
    }
  }
  const state = params.get("state") || null;
  if (state !== null && !ALERT_STATES.includes(state)) {
    throw new TypeError(`"state" must be one of ${ALERT_STATES.join(", ")}, got "${state}"`);
  }
  return { priorities, state };
}

function matches(a: SilencedAlert, f: AlertFilter): boolean {
  if (f.priorities !== null && !f.priorities.has(a.priority)) return false;
  if (f.state === "acknowledged") return a.acknowledged;
  if (f.state === "silenced") return a.silenced_by.length > 0;
  // Unknown (absent) where the notifier stage runs in another process: nothing matches.
  if (f.state === "inhibited") return (a.inhibited_by ?? null) !== null;
  if (f.state === "held") return (a.held_by_storm_guard ?? null) !== null;
  return f.state === null || a.state === f.state;
}

/**
 * An alert as the API shows it: the ids of the silences in force that match it (empty: none) and,
 * when the notifier stage runs in this process, what inhibits it or holds it back (null: nothing).
 */
export type SilencedAlert = SensorAlert & { silenced_by: string[] } & Partial<NotificationStatus>;

export function alertsView(
  service: Service,
  live: LiveFeed,
  filter: AlertFilter,
): { active: SilencedAlert[]; recent: SilencedAlert[] } {
  // Silenced alerts are tracked and shown as any other; the notifier stage holds their notifications.
  const dispatcher = service.dispatcher;
  const view = (a: SensorAlert): SilencedAlert => ({
    ...a,
    silenced_by: service.silences.silencing(a),
    ...(dispatcher === null ? {} : dispatcher.notificationStatus(a)),
  });
  const active = (service.pipeline?.tracker.active() ?? [])
    .flatMap((ep) => ep.alert === null ? [] : [view(ep.alert)])
    .filter((a) => matches(a, filter))
    .sort((a, b) => PRIORITIES.indexOf(b.priority) - PRIORITIES.indexOf(a.priority) || cmp(b, a));
  const recent = [...live.recentAlerts()].reverse().map(view).filter((a) => matches(a, filter));
  return { active, recent };
}

function cmp(a: SensorAlert, b: SensorAlert): number {
  return a.timestamp < b.timestamp ? -1 : a.timestamp > b.timestamp ? 1 : 0;
}

export function rulesView(registry: RuleRegistry, notifiers?: { status(): NotifierConfigStatus }): unknown {
  const files = registry.status();
  // The directory's problems too (missing mid-swap), and refusals that only show across files
  // (an id already in force elsewhere, an emptied file): each keeps the last good rules in force.
  const problems = registry.problems();
  // The notifier file is configuration beside the rules: its problems show with theirs.
  const notifierStatus = notifiers?.status() ?? null;
  const notifierErrors = (notifierStatus?.errors ?? []).map((e) => ({
    ...e,
    location: `${e.file}:${e.line}:${e.column}`,
    text: `${e.file}:${e.line}:${e.column} ${e.message}`,
  }));
  return {
    dir: registry.dir,
    loaded: registry.ruleSet.rules.length,
    ok: problems.length === 0 && notifierErrors.length === 0,
    // Files whose version on disk is not the one in force.
    stale: files.filter((f) => !f.current).map((f) => f.file),
    last_good_reload: registry.lastGoodReload?.toISOString() ?? null,
    reload_errors: registry.reloadErrors,
    files,
    notifiers: notifierStatus,
    errors: [
      ...problems.map((p) => ({
        ...p,
        location: `${p.file}:${p.line}:${p.column}`,
        text: formatProblem(p),
      })),
      ...notifierErrors,
    ],
    rules: [...registry.ruleSet.byId.values()].map((r) => ({
      id: r.rule.id,
      description: r.rule.description,
      enabled: r.rule.enabled,
      priority: r.rule.priority,
      sensor_type: r.rule.sensor_type ?? null,
      sensor_id: r.rule.sensor_id ?? null,
      threshold: r.rule.threshold ?? null,
      condition: r.logic,
      labels: r.rule.labels,
      source: `${r.source.file}:${r.source.line}`,
    })),
  };
}

export type AckResult =
  | { ok: true; alert: SensorAlert }
  | { ok: false; status: number; error: string };

/**
 * Acknowledges the open episode where it lives (this thread, or the engine worker that owns its
 * sensor) and publishes the updated alert there (see `acknowledgeAlert`).
 */
export async function acknowledge(
  service: Service,
  live: LiveFeed,
  alertId: string,
  by: string,
): Promise<AckResult> {
  if (service.pipeline === null) {
    return { ok: false, status: 409, error: "This process runs no engine: acknowledge on one that does" };
  }
  const alert = await service.acknowledge(alertId, by);
  if (alert === null) return { ok: false, status: 404, error: `No open alert "${alertId}"` };
  live.acknowledged(alert);
  return { ok: true, alert };
}
