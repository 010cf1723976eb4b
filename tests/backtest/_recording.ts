/**
 * A recording of sensor events for backtests: 20 minutes of five sensors every 10 s, with episodes of
 * the shipped rules, repeats (the extra rule of `REPEAT_RULE`), a window that fires and resolves, late
 * events (one within the window's allowed lateness, one beyond), an out-of-order event, a duplicate,
 * an invalid line, two silences the deadman rule notices (one of which ends), and last a sentinel
 * event whose alert says the service has processed everything before it.
 */

/** A rule with `for`, `clear_for` and `repeat_interval`, beside the shipped ones. */
export const REPEAT_RULE = `rules:
  - id: temperature-hot-repeat
    sensor_type: temperature
    threshold: { max: 30 }
    for: 20s
    clear_for: 20s
    repeat_interval: 1m
    priority: low
    message: "{{sensor_id}} above 30 for a while: {{value}}"
`;

export interface Recorded {
  key: string | null;
  value: string;
}

/** `t0` must be a multiple of 5 minutes, so the 5-minute windows start with the recording. */
export function recording(t0: number): Recorded[] {
  if (t0 % 300_000 !== 0) throw new TypeError("t0 must be a multiple of 5 minutes");
  const out: Recorded[] = [];
  let n = 0;
  const ev = (sensor: string, type: string, unit: string, s: number, value: number, id?: string) => {
    const e = {
      event_id: id ?? `${sensor}-${++n}`,
      sensor_id: sensor,
      sensor_type: type,
      value,
      unit,
      timestamp: new Date(t0 + s * 1000).toISOString(),
    };
    out.push({ key: `${type}:${sensor}`, value: JSON.stringify(e) });
  };
  for (let s = 0; s <= 1200; s += 10) {
    ev("hum-1", "humidity", "%", s, 50);
    ev("temp-1", "temperature", "°C", s, (s >= 100 && s < 160) || s === 400 ? 36 + (s % 3) : 22);
    ev("temp-2", "temperature", "°C", s, s >= 200 && s < 510 ? 31 : 25);
    if (s < 300) ev("co2-1", "co2", "ppm", s, 900);
    else if (s < 600) ev("co2-1", "co2", "ppm", s, 400);
    if (s < 600 || s >= 1000) ev("press-1", "pressure", "hPa", s, 1013);
    // Out of order: older than the sensor's newest, event rules leave it alone.
    if (s === 120) ev("temp-1", "temperature", "°C", 95, 50);
    // Within the window's 30 s of allowed lateness: it still counts in [0, 300).
    if (s === 310) ev("co2-1", "co2", "ppm", 295, 2000);
    // Beyond it: a late event, left out of the aggregate.
    if (s === 400) ev("co2-1", "co2", "ppm", 250, 5000);
    if (s === 500) {
      out.push(out[out.length - 1]!); // a duplicate (same event id)
      out.push({ key: null, value: "{not json" });
    }
  }
  ev("sentinel", "humidity", "%", 1210, 95);
  return out;
}

export function ndjson(records: readonly Recorded[]): string {
  return records.map((r) => r.value).join("\n") + "\n";
}

/**
 * The shipped rules (rules/*.yaml) and the repeat rule, copied into a new directory inside the
 * project, which is all `deno task start` may read.
 */
export async function shippedRulesDir(): Promise<string> {
  const root0 = new URL("../../", import.meta.url).pathname;
  const dir = await Deno.makeTempDir({ dir: root0, prefix: ".test-rules-backtest-" });
  const root = new URL("../../rules/", import.meta.url);
  for await (const e of Deno.readDir(root)) {
    if (!e.isFile || !e.name.endsWith(".yaml") || e.name === "notifiers.yaml") continue;
    await Deno.copyFile(new URL(e.name, root), `${dir}/${e.name}`);
  }
  await Deno.writeTextFile(`${dir}/repeats.yaml`, REPEAT_RULE);
  return dir;
}

/** Runs `deno task backtest`'s command line with the task's own permissions. */
export async function runBacktest(
  args: string[],
  opts: { stdin?: string; env?: Record<string, string> } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const task = JSON.parse(await Deno.readTextFile(new URL("../../deno.json", import.meta.url))).tasks
    .backtest as string;
  const perms = task.split(/\s+/).filter((a) => a.startsWith("--allow-"));
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...perms, "src/backtest/cli.ts", ...args],
    cwd: new URL("../../", import.meta.url),
    env: { NO_COLOR: "1", LOG_LEVEL: "warn", ...opts.env },
    stdin: opts.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const output = child.output();
  if (opts.stdin !== undefined) {
    const w = child.stdin.getWriter();
    // A command that exits before reading its input (a usage error) closes the pipe: its output says why.
    await w.write(new TextEncoder().encode(opts.stdin)).then(() => w.close()).catch(() => {});
  }
  const { code, stdout, stderr } = await output;
  return { code, stdout: new TextDecoder().decode(stdout), stderr: new TextDecoder().decode(stderr) };
}
