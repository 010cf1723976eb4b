/**
 * `deno task bench:dashboard`: the dashboard with a fleet, in headless Chromium. It starts the
 * service on the embedded simulator (`--sensors 10000` by default, fast enough that every sensor
 * changes between two flushes of the live stream), then measures
 *
 * - the stream: bytes and sensors per `sensors` message, read with a plain HTTP client;
 * - the page: how long its main thread is held, as `longtask` entries (tasks over 50 ms) and as the
 *   worst delay of a `setTimeout(0)` probe fired every 100 ms, while it loads, while live updates
 *   arrive, and while an operator filters, regroups and scrolls; and how many DOM nodes it holds.
 *
 * `--root DIR` runs another checkout (e.g. `git archive` of an older commit) for a before/after
 * comparison. Nothing is asserted: the structural facts are in tests/http/dashboard_fleet_browser_test.ts.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { readSettings } from "../../src/config/setting.ts";
import { commands } from "../../src/config/settings.ts";
import { env } from "../../src/env.ts";
import { print } from "../../src/log.ts";

const CHROMIUM = readSettings(commands["bench:dashboard"].settings, [], env).chromium;

interface Phase {
  phase: string;
  seconds: number;
  longtasks: number;
  longest_task_ms: number;
  worst_timeout0_ms: number;
  dom_nodes: number;
  /** The fleet view's own User Timing measures (fleet.js): the longest of each kind. */
  measures: Record<string, number>;
  /**
   * From a Chromium trace of the renderer's main thread: tasks by CPU time (thread time), which a
   * busy machine does not stretch as it stretches wall time, and what the longest one spent it on.
   */
  cpu: { tasks_over_50ms: number; longest_ms: number; longest_in: string };
}

interface TraceEvent {
  name: string;
  ph: string;
  pid: number;
  tid: number;
  ts: number;
  dur?: number;
  tdur?: number;
  args?: { name?: string };
}

const isTask = (e: TraceEvent) => e.name === "RunTask" || e.name === "ThreadControllerImpl::RunTask";

/** Main-thread tasks of the page's renderer in a trace, by CPU time. */
function cpuFigures(events: TraceEvent[]): Phase["cpu"] {
  const mains = new Set(
    events.filter((e) => e.ph === "M" && e.name === "thread_name" && e.args?.name === "CrRendererMain")
      .map((e) => `${e.pid}:${e.tid}`),
  );
  const onMain = events.filter((e) => e.ph === "X" && mains.has(`${e.pid}:${e.tid}`));
  const tasks = onMain.filter(isTask);
  const cpu = (e: TraceEvent) => (e.tdur ?? e.dur ?? 0) / 1000;
  const longest = tasks.reduce<TraceEvent | null>((a, e) => a === null || cpu(e) > cpu(a) ? e : a, null);
  let longestIn = "–";
  if (longest !== null) {
    const inside = new Map<string, number>();
    for (const e of onMain) {
      if (isTask(e) || e.pid !== longest.pid || e.tid !== longest.tid) continue;
      if (e.ts < longest.ts || e.ts + (e.dur ?? 0) > longest.ts + (longest.dur ?? 0)) continue;
      inside.set(e.name, Math.max(inside.get(e.name) ?? 0, cpu(e)));
    }
    longestIn = [...inside].sort((a, b) => b[1] - a[1]).slice(0, 3).map(([n, ms]) => `${n} ${Math.round(ms)}`)
      .join(", ");
  }
  return {
    tasks_over_50ms: tasks.filter((e) => cpu(e) > 50).length,
    longest_ms: longest === null ? 0 : Math.round(cpu(longest)),
    longest_in: longestIn,
  };
}

interface StreamFigures {
  seconds: number;
  sensor_messages: number;
  max_sensors_per_message: number;
  max_message_kb: number;
  kb_per_second: number;
  initial_kb: number;
  initial_messages: number;
  /** As the service's `stats` last said: the simulator runs below --rate on a busy machine. */
  events_per_second: number;
}

function options(args: string[]) {
  const { values } = parseArgs({
    args,
    options: {
      sensors: { type: "string", default: "10000" },
      rate: { type: "string", default: "5000" },
      anomaly: { type: "string", default: "0.002" },
      seconds: { type: "string", default: "20" },
      root: { type: "string", default: new URL("../../", import.meta.url).pathname },
      "stream-only": { type: "boolean", default: false },
    },
    strict: true,
  });
  const int = (name: string, s: string) => {
    const n = Number(s);
    if (!Number.isFinite(n) || n < 0) {
      throw new TypeError(`--${name} must be a non-negative number, got "${s}"`);
    }
    return n;
  };
  return {
    sensors: int("sensors", values.sensors),
    rate: int("rate", values.rate),
    anomaly: int("anomaly", values.anomaly),
    seconds: int("seconds", values.seconds),
    root: values.root.endsWith("/") ? values.root : `${values.root}/`,
    streamOnly: values["stream-only"],
  };
}

/** The service as `deno task start` runs it (its permissions), from `root`; resolves with its URL. */
async function startService(root: string, args: string[]) {
  const tasks = JSON.parse(await Deno.readTextFile(`${root}deno.json`)).tasks;
  const flags = (tasks.start as string).split(/\s+/).filter((a) => a.startsWith("--"));
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...flags, "main.ts", ...args],
    cwd: root,
    env: { KAFKA_BROKERS: "", HTTP_PORT: "0", LOG_LEVEL: "info", NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  const url = new Promise<string>((resolve, reject) => {
    const pump = async (s: ReadableStream<Uint8Array>) => {
      for await (const chunk of s.pipeThrough(new TextDecoderStream())) {
        text = (text + chunk).slice(-20_000);
        // Off a terminal the log is JSON lines.
        const m = /"msg":"HTTP listening".*?"url":"([^"]+)"/.exec(text);
        if (m) resolve(m[1]!);
      }
    };
    Promise.all([pump(child.stdout), pump(child.stderr)]).then(
      () => reject(new Error(`The service ended before listening:\n${text}`)),
      reject,
    );
  });
  return { child, url: await url };
}

/** Reads the SSE stream for `seconds`; the initial picture is what arrives before the first `stats` after it. */
async function measureStream(base: string, seconds: number): Promise<StreamFigures> {
  const ctl = new AbortController();
  const res = await fetch(`${base}/api/stream`, { signal: ctl.signal });
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  const deadline = Date.now() + seconds * 1000;
  let buffer = "";
  const figures = {
    seconds,
    sensor_messages: 0,
    max_sensors_per_message: 0,
    max_message_kb: 0,
    kb_per_second: 0,
    initial_kb: 0,
    initial_messages: 0,
    events_per_second: 0,
  };
  let initial = true;
  let liveBytes = 0;
  let liveSince = 0;
  const timer = setTimeout(() => ctl.abort(), seconds * 1000);
  try {
    while (Date.now() < deadline) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const message = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const event = /^event: (\w+)/.exec(message)?.[1];
        const bytes = new TextEncoder().encode(message).byteLength;
        if (initial && event === "alerts") {
          // The initial picture ends with the open alerts.
          initial = false;
          figures.initial_kb += bytes / 1024;
          liveSince = Date.now();
          continue;
        }
        if (initial) {
          figures.initial_kb += bytes / 1024;
          figures.initial_messages++;
          continue;
        }
        liveBytes += bytes;
        if (event === "stats") {
          figures.events_per_second =
            JSON.parse(message.slice(message.indexOf("data: ") + 6)).events_per_second;
        }
        if (event !== "sensors") continue;
        const data = JSON.parse(message.slice(message.indexOf("data: ") + 6));
        figures.sensor_messages++;
        figures.max_sensors_per_message = Math.max(figures.max_sensors_per_message, data.length);
        figures.max_message_kb = Math.max(figures.max_message_kb, bytes / 1024);
      }
    }
  } catch (err) {
    if (!ctl.signal.aborted) throw err;
  } finally {
    clearTimeout(timer);
    ctl.abort();
  }
  figures.kb_per_second = liveBytes / 1024 / Math.max(0.001, (Date.now() - liveSince) / 1000);
  return figures;
}

/** Installed before the page's own script: collects long tasks and the setTimeout(0) probe. */
const PROBE = `
  window.__bench = { tasks: [], probes: [] };
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) window.__bench.tasks.push({ at: e.startTime, ms: e.duration });
  }).observe({ type: "longtask", buffered: true });
  setInterval(() => {
    const at = performance.now();
    setTimeout(() => window.__bench.probes.push({ at, ms: performance.now() - at }), 0);
  }, 100);
`;

async function measurePage(base: string, sensors: number, seconds: number): Promise<Phase[]> {
  Deno.env.set("__IS_WSL_TEST__", "1");
  const { chromium } = await import("playwright-core");
  const profile = await Deno.makeTempDir({ prefix: "chromium-bench-" });
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 900 },
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"],
  });
  const phases: Phase[] = [];
  try {
    const page = context.pages()[0] ?? await context.newPage();
    await page.addInitScript(PROBE);
    const cdp = await context.newCDPSession(page);
    const phase = async (name: string, work: () => Promise<unknown>) => {
      await cdp.send("Tracing.start", {
        categories: "devtools.timeline,disabled-by-default-devtools.timeline,v8",
        transferMode: "ReturnAsStream",
      });
      const from = await page.evaluate<number>("performance.now()");
      const started = Date.now();
      await work();
      const to = await page.evaluate<number>("performance.now()");
      const complete = new Promise<{ stream?: string }>((r) => cdp.once("Tracing.tracingComplete", r));
      await cdp.send("Tracing.end");
      const { stream } = await complete;
      let trace = "";
      for (let eof = false; !eof && stream !== undefined;) {
        const chunk = await cdp.send("IO.read", { handle: stream, size: 1 << 20 });
        trace += chunk.base64Encoded ? atob(chunk.data) : chunk.data;
        eof = chunk.eof;
      }
      if (stream !== undefined) await cdp.send("IO.close", { handle: stream });
      const parsed = JSON.parse(trace);
      const cpu = cpuFigures(Array.isArray(parsed) ? parsed : parsed.traceEvents);
      const figures = await page.evaluate<
        { tasks: number[]; probes: number[]; nodes: number; measures: Record<string, number> }
      >(`({
        tasks: __bench.tasks.filter((t) => t.at >= ${from} && t.at < ${to}).map((t) => t.ms),
        probes: __bench.probes.filter((p) => p.at >= ${from} && p.at < ${to}).map((p) => p.ms),
        nodes: document.getElementsByTagName("*").length,
        measures: performance.getEntriesByType("measure")
          .filter((m) => m.startTime >= ${from} && m.startTime < ${to})
          .reduce((worst, m) => ({ ...worst, [m.name]: Math.max(worst[m.name] ?? 0, m.duration) }), {}),
      })`);
      phases.push({
        phase: name,
        seconds: (Date.now() - started) / 1000,
        longtasks: figures.tasks.length,
        longest_task_ms: Math.round(Math.max(0, ...figures.tasks)),
        worst_timeout0_ms: Math.round(Math.max(0, ...figures.probes)),
        dom_nodes: figures.nodes,
        measures: Object.fromEntries(Object.entries(figures.measures).map(([k, v]) => [k, Math.round(v)])),
        cpu,
      });
    };
    await page.goto("about:blank");
    // Loaded: every sensor known, whichever dashboard this is (the fleet view counts them in
    // data-total, the old one had a card each).
    const loaded = `(() => {
      const n = document.getElementById("sensors");
      const total = Number(n?.dataset.total ?? document.querySelectorAll("[data-sensor]").length);
      return total >= ${sensors};
    })()`;
    await phase("load until every sensor is shown", async () => {
      await page.goto(base);
      // Polled from here: the page's CSP refuses the eval behind page.waitForFunction.
      for (let i = 0; i < 1200 && !await page.evaluate<boolean>(loaded); i++) await page.waitForTimeout(250);
    });
    await phase(`live updates for ${seconds} s`, () => page.waitForTimeout(seconds * 1000));
    await phase("filter, regroup, scroll", async () => {
      if (await page.locator("#fleet-text").count() > 0) {
        await page.locator("#fleet-text").pressSequentially("g0042", { delay: 150 });
        await page.locator("#fleet-text").fill("");
        await page.locator("#fleet-state").selectOption("alert");
        await page.locator("#fleet-state").selectOption("");
        await page.locator("#fleet-group").setChecked(false);
        await page.locator("#fleet-group").setChecked(true);
      }
      for (let i = 0; i < 20; i++) {
        await page.mouse.move(300, 700);
        await page.mouse.wheel(0, 3000);
        await page.waitForTimeout(150);
      }
    });
  } finally {
    await context.close();
    await Deno.remove(profile, { recursive: true }).catch(() => {});
  }
  return phases;
}

if (import.meta.main) {
  const opts = options(Deno.args);
  print(
    `Dashboard bench: ${opts.sensors} generated sensors at ${opts.rate} events/s (anomaly ${opts.anomaly}), ` +
      `service from ${opts.root}`,
  );
  const service = await startService(opts.root, [
    "--sensors",
    String(opts.sensors),
    "--rate",
    String(opts.rate),
    "--anomaly",
    String(opts.anomaly),
    "--seed",
    "7",
  ]);
  try {
    // Let the simulator go round the fleet once, so the stream carries all of it (on a busy machine
    // it runs below --rate).
    for (let i = 0; i < 120; i++) {
      const res = await fetch(`${service.url}/api/sensors`);
      const known = res.ok ? (await res.json()).sensors.length : 0;
      if (known >= opts.sensors + 6) break;
      await new Promise((r) => setTimeout(r, 1000));
    }
    const stream = await measureStream(service.url, Math.min(10, opts.seconds));
    print(`Stream: ${JSON.stringify(stream, (_, v) => typeof v === "number" ? Math.round(v * 10) / 10 : v)}`);
    if (!opts.streamOnly) {
      const phases = await measurePage(service.url, opts.sensors + 6, opts.seconds);
      print(
        "| phase | seconds | long tasks | longest task ms | worst setTimeout(0) ms | DOM nodes | longest ms of " +
          "| tasks over 50 ms CPU | longest task ms CPU | spent in |",
      );
      print("| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | --- |");
      for (const p of phases) {
        const measures = Object.entries(p.measures).map(([k, v]) => `${k.replace(/^fleet: /, "")} ${v}`);
        print(
          `| ${p.phase} | ${p.seconds.toFixed(1)} | ${p.longtasks} | ${p.longest_task_ms} | ` +
            `${p.worst_timeout0_ms} | ${p.dom_nodes} | ${
              measures.join(", ") || "–"
            } | ${p.cpu.tasks_over_50ms} | ` +
            `${p.cpu.longest_ms} | ${p.cpu.longest_in} |`,
        );
      }
    }
  } finally {
    service.child.kill("SIGTERM");
    await service.child.status;
  }
}
