/**
 * Generated rule sets for the benchmarks, shaped like a site's rules: most rules are about a few named
 * sensors (overrides), some about a family of sensors by id pattern, few about a whole sensor type.
 * Deterministic, so every run loads the same rules.
 *
 * The mix, per 100 rules: 80 name 1–3 exact sensor ids, 18 a sensor id pattern (`temp-g0012*`),
 * 2 a whole sensor type (a threshold and a JSON-Logic condition; only the threshold below 51 rules).
 *
 * @module
 */
import { prng } from "../../src/simulator/sensors.ts";

const FAMILIES = [
  { prefix: "temp", type: "temperature", min: 10, max: 35 },
  { prefix: "hum", type: "humidity", min: 20, max: 80 },
  { prefix: "press", type: "pressure", min: 980, max: 1050 },
  { prefix: "co2", type: "co2", min: 0, max: 1000 },
  { prefix: "light", type: "light", min: 0, max: 3000 },
] as const;

export type RuleShape = "exact" | "pattern" | "type";

/** Plain rule definitions (the YAML schema's shape). `sensors` bounds the generated ids `xxx-gNNNNN`. */
export function generateRules(
  n: number,
  opts: { sensors?: number; seed?: number; only?: RuleShape } = {},
): Record<string, unknown>[] {
  const sensors = opts.sensors ?? 10_000;
  const rand = prng(opts.seed ?? 42);
  const rules: Record<string, unknown>[] = [];
  for (let i = 0; i < n; i++) {
    const slot = i % 100;
    const shape: RuleShape = opts.only ??
      (slot === 0 || slot === 50 ? "type" : slot % 5 === 1 ? "pattern" : "exact");
    const family = FAMILIES[Math.floor(rand() * FAMILIES.length)]!;
    const id = `gen-${shape}-${String(i).padStart(4, "0")}`;
    const base = { id, priority: "normal", labels: { team: "bench" } };
    const threshold = { min: family.min, max: family.max };
    // The sensor fleet numbers sensors round-robin over six templates, two of them temperature.
    const sensorId = () => {
      const k = 1 + Math.floor(rand() * sensors);
      const prefix = ["temp", "temp", "hum", "press", "co2", "light"][(k - 1) % 6]!;
      return `${prefix}-g${String(k).padStart(5, "0")}`;
    };
    if (shape === "exact") {
      const ids = Array.from({ length: 1 + Math.floor(rand() * 3) }, sensorId);
      const tight = i % 2 === 0 ? { threshold } : {
        condition: {
          "or": [{ "<": [{ "var": "value" }, family.min] }, { ">": [{ "var": "value" }, family.max] }],
        },
      };
      rules.push({ ...base, sensor_id: ids, ...tight });
    } else if (shape === "pattern") {
      const k = Math.floor(rand() * Math.min(1000, Math.ceil(sensors / 10)));
      rules.push({
        ...base,
        sensor_type: family.type,
        sensor_id: `${family.prefix}-g${String(k).padStart(4, "0")}*`,
        threshold,
      });
    } else if (i % 2 === 0) {
      // Type-wide, wider than the shipped rules: fires on few events.
      rules.push({
        ...base,
        sensor_type: family.type,
        threshold: { min: family.min - 100, max: family.max + 2000 },
      });
    } else {
      rules.push({
        ...base,
        sensor_type: family.type,
        condition: {
          "and": [
            { ">": [{ "var": "value" }, family.max] },
            { "==": [{ "var": "metadata.firmware_version" }, "0.9.0"] },
          ],
        },
      });
    }
  }
  return rules;
}

/** A rule file's text: JSON is YAML, and a file this size is not for reading anyway. */
export function rulesFile(rules: readonly Record<string, unknown>[]): string {
  return JSON.stringify({ rules }, null, 1) + "\n";
}
