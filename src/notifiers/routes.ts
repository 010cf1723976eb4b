import type { SensorAlert } from "../contract/schemas.ts";
import { durationMs } from "../rules/schema.ts";
import type { Match, NotifiersFile, Route } from "./config.ts";
import type { GroupSpec } from "./grouping.ts";

/** Where one alert goes: a receiver, and the group it is batched in (null: sent on its own). */
export interface Destination {
  receiver: string;
  group: GroupSpec | null;
}

const list = <T>(v: T | T[] | undefined): T[] | undefined =>
  v === undefined ? undefined : Array.isArray(v) ? v : [v];

export function matches(m: Match, alert: SensorAlert): boolean {
  const has = <T>(allowed: T | T[] | undefined, value: T) =>
    allowed === undefined || list(allowed)!.includes(value);
  if (!has(m.priority, alert.priority)) return false;
  if (!has(m.sensor_type, alert.sensor_type)) return false;
  if (!has(m.rule_id, alert.rule_id)) return false;
  for (const [k, v] of Object.entries(m.labels ?? {})) if (alert.labels[k] !== v) return false;
  return true;
}

function groupKey(route: Route, index: number, alert: SensorAlert): string {
  const values = (route.group_by ?? []).map((f) => {
    const v = f.startsWith("labels.") ? alert.labels[f.slice(7)] : (alert as Record<string, unknown>)[f];
    return `${f}=${v === undefined ? "" : String(v)}`;
  });
  return `${index}|${values.join(",")}`;
}

/**
 * Routes in order, Alertmanager style: the first matching route takes the alert unless it says
 * `continue`; an alert no route took goes to the default receivers. A receiver gets an alert once.
 */
export function route(config: NotifiersFile, alert: SensorAlert): Destination[] {
  const out = new Map<string, Destination>();
  let matched = false;
  for (const [i, r] of config.routes.entries()) {
    if (!matches(r.match, alert)) continue;
    matched = true;
    const waitMs = r.group_wait === undefined ? null : durationMs(r.group_wait);
    const group: GroupSpec | null = waitMs === null ? null : {
      key: groupKey(r, i, alert),
      waitMs,
      intervalMs: r.group_interval === undefined ? waitMs : durationMs(r.group_interval),
      repeatMs: r.repeat_interval === undefined ? null : durationMs(r.repeat_interval),
    };
    for (const receiver of r.receivers) {
      if (!out.has(receiver)) {
        out.set(receiver, { receiver, group: group && { ...group, key: `${receiver}|${group.key}` } });
      }
    }
    if (!r.continue) break;
  }
  if (!matched) {
    for (const receiver of config.default_receivers) out.set(receiver, { receiver, group: null });
  }
  return [...out.values()];
}
