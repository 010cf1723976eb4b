/**
 * How long one rule file under the size cap holds up the event loop while it loads: the longest gap
 * between two turns of a `setTimeout(0)` chain during `parseRuleFileAsync`, and the load's total.
 * Two shapes a reviewer found to stall for seconds: a `limits:` table of 8,000 `sensor_id` entries
 * (~232 KB) and a flow map of 20,000 keys (~200 KB); and README's case, 850 described rules (~250 KB).
 *
 *   deno run --allow-read --allow-env=LOG_TOKENS,LOG_STREAM,LOG_LEVEL scripts/bench/rule_file_stall.ts
 *
 * @module
 */
import { stringify } from "yaml";
import { MAX_RULE_FILE_BYTES, parseRuleFileAsync } from "../../src/rules/load.ts";
import { generateRules } from "./rules.ts";

/** A `limits:` table as a fleet would write it: one line per sensor. */
export function limitsFile(entries: number): string {
  const lines = [
    "rules:",
    "  - { id: fleet-band, sensor_type: temperature, limits: fleet, priority: high }",
    "limits:",
    "  fleet:",
    "    default: { min: 10, max: 35 }",
    "    sensor_id:",
  ];
  for (let i = 0; i < entries; i++) {
    lines.push(`      tmp-${String(i).padStart(5, "0")}: { max: 4${i % 10} }`);
  }
  return lines.join("\n") + "\n";
}

/** A rule whose labels are one flow map of `keys` keys. */
export function flowMapFile(keys: number): string {
  const pairs: string[] = [];
  for (let i = 0; i < keys; i++) pairs.push(`k${i.toString(36).padStart(4, "0")}: v`);
  return `rules:\n  - id: wide\n    sensor_type: temperature\n    threshold: { max: 1 }\n    priority: low\n` +
    `    labels: { ${pairs.join(", ")} }\n`;
}

/** README's case: 850 described rules, ~250 KB. */
export function rulesFile(n: number): string {
  const message = "{{sensor_id}} at {{location}}: {{value}} {{unit}}, outside its band";
  return stringify({ rules: generateRules(n).map((r) => ({ ...r, message })) });
}

async function measure(name: string, text: string): Promise<void> {
  const bytes = new TextEncoder().encode(text).length;
  if (bytes > MAX_RULE_FILE_BYTES) throw new Error(`${name}: ${bytes} bytes is over the cap`);
  let longest = 0;
  let last = performance.now();
  let running = true;
  const tick = () => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
    if (running) setTimeout(tick, 0);
  };
  setTimeout(tick, 0);
  const started = performance.now();
  const result = await parseRuleFileAsync(`${name}.yaml`, text);
  const total = performance.now() - started;
  running = false;
  tick();
  // deno-lint-ignore no-console
  console.log(
    `${name}: ${
      (bytes / 1000).toFixed(0)
    } KB, ${result.rules.length} rules, ${result.problems.length} problems, ` +
      `longest stall ${longest.toFixed(0)} ms, total ${total.toFixed(0)} ms`,
  );
}

if (import.meta.main) {
  await measure("rules-850", rulesFile(850));
  await measure("limits-8000", limitsFile(8_000));
  await measure("flowmap-20000", flowMapFile(20_000));
}
