import type { SensorEvent } from "../contract/schemas.ts";
import type { CompiledRule } from "./compile.ts";

/**
 * An immutable set of compiled rules with an index, so an event is tested only against rules that
 * can match its sensor type and id. Swapped whole on reload, between two events.
 */
export class RuleSet {
  readonly rules: readonly CompiledRule[];
  readonly byId: ReadonlyMap<string, CompiledRule>;
  readonly #byType = new Map<string, CompiledRule[]>();
  readonly #bySensor = new Map<string, CompiledRule[]>();
  readonly #cache = new Map<string, readonly CompiledRule[]>();

  constructor(rules: readonly CompiledRule[]) {
    this.rules = rules.filter((r) => r.rule.enabled);
    this.byId = new Map(rules.map((r) => [r.rule.id, r]));
    for (const r of this.rules) {
      if (r.sensorIds !== null) {
        for (const id of r.sensorIds) push(this.#bySensor, id, r);
      } else {
        for (const t of r.sensorTypes ?? ["*"]) push(this.#byType, t, r);
      }
    }
  }

  /** Rules whose indexed selectors match; cached per sensor, as a sensor keeps its type. */
  candidates(event: SensorEvent): readonly CompiledRule[] {
    const cacheKey = `${event.sensor_type}\u0000${event.sensor_id}`;
    let list = this.#cache.get(cacheKey);
    if (list === undefined) {
      const all = [
        ...(this.#byType.get(event.sensor_type) ?? []),
        ...(this.#byType.get("*") ?? []),
        ...(this.#bySensor.get(event.sensor_id) ?? []).filter((r) =>
          r.sensorTypes === null || r.sensorTypes.has(event.sensor_type)
        ),
      ];
      // Keep file order so alerts of one event come out in the order rules were written.
      const order = new Map(this.rules.map((r, i) => [r, i]));
      list = all.sort((a, b) => order.get(a)! - order.get(b)!);
      this.#cache.set(cacheKey, list);
    }
    return list;
  }
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list === undefined) map.set(key, [value]);
  else list.push(value);
}
