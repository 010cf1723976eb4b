/**
 * `deno task backtest`: a rule set over history, with the service's engine in event time; nothing is
 * notified and nothing is written to Kafka. See README, "Backtest a rule".
 *
 * @module
 */
import { dirname, resolve } from "node:path";
import { usage } from "../config/docs.ts";
import { readSettings, type Values } from "../config/setting.ts";
import { commands } from "../config/settings.ts";
import type { InputRecord } from "../contract/records.ts";
import { durationMs } from "../contract/duration.ts";
import { env } from "../env.ts";
import { logger as processLogger, print } from "../log.ts";
import { formatProblem } from "../rules/load.ts";
import { RuleRegistry } from "../rules/registry.ts";
import { RuleSet } from "../rules/ruleset.ts";
import { readNdjson } from "../source/ndjson.ts";
import { createKafka, kafkaSettingsFromEnv } from "../transport/kafka.ts";
import { renderHtml } from "./html.ts";
import { readRange } from "./kafka.ts";
import { buildReport, formatText } from "./report.ts";
import { Backtest } from "./run.ts";

const USAGE = usage(commands.backtest);

type Options = Values<typeof commands.backtest.settings>;

/** A rule set from a directory, with `--rule` applied; throws with every problem, one per line. */
export async function loadRuleSet(dir: string, only: readonly string[]): Promise<RuleSet> {
  const registry = new RuleRegistry(dir);
  const { ruleSet, problems } = await registry.reload();
  if (registry.directoryProblem !== null) throw new Error(registry.directoryProblem.message);
  if (problems.length > 0) {
    throw new Error(`Rule problems in "${dir}":\n${problems.map(formatProblem).join("\n")}`);
  }
  if (only.length === 0) return ruleSet;
  // The subset keeps the files' limits tables (its `limits:` rules read them) and inhibit rules.
  return new RuleSet(
    ruleSet.rules.filter((r) => only.includes(r.rule.id)),
    ruleSet.inhibitions,
    ruleSet.limits,
  );
}

/** `--from`/`--to`: an ISO time, or a duration before now (`24h`). */
export function parseWhen(name: string, text: string, now = Date.now()): number {
  const t = /^\d+(?:\.\d+)?(?:ms|s|m|h|d)(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))*$/.test(text)
    ? now - durationMs(text)
    : Date.parse(text);
  if (Number.isNaN(t)) {
    throw new TypeError(`--${name} must be an ISO time or a duration like "24h", got "${text}"`);
  }
  return t;
}

/** Events read and their rate on one terminal line, twice a second. */
function progress(total: () => bigint | null): { count(n: number): void; done(): void } {
  if (!Deno.stderr.isTerminal()) return { count: () => {}, done: () => {} };
  const started = performance.now();
  let read = 0;
  let shownAt = 0;
  const enc = new TextEncoder();
  const show = () => {
    const s = (performance.now() - started) / 1000;
    const t = total();
    const rate = s > 0 ? Math.round(read / s) : 0;
    const of = t === null ? "" : ` of ${t}`;
    Deno.stderr.writeSync(enc.encode(`\r\x1b[2K${read}${of} events read, ${rate} events/s`));
  };
  return {
    count(n) {
      read += n;
      const now = performance.now();
      if (now - shownAt >= 500) {
        shownAt = now;
        show();
      }
    },
    done() {
      show();
      Deno.stderr.writeSync(enc.encode("\n"));
    },
  };
}

export async function main(args: string[]): Promise<number> {
  let o: Options;
  try {
    o = readSettings(commands.backtest.settings, args, env);
  } catch (err) {
    print(`${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (o.help) {
    print(USAGE);
    return 0;
  }
  let from: number | null = null;
  let to: number | null = null;
  try {
    if (o.input !== null && (o.from !== null || o.to !== null)) {
      throw new TypeError("--from and --to read the events topic: leave them out with --input");
    }
    if (o.input === null && o.brokers.length === 0) {
      throw new TypeError(
        "Give --input FILE|- or the broker (--brokers or KAFKA_BROKERS) to read the events topic",
      );
    }
    const now = Date.now();
    if (o.from !== null) from = parseWhen("from", o.from, now);
    if (o.to !== null) to = parseWhen("to", o.to, now);
    if (from !== null && to !== null && to <= from) {
      throw new TypeError(`--to must be after --from, got "${o.from}" and "${o.to}"`);
    }
  } catch (err) {
    print(`${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  // A page that cannot be written is said before the run, not after it.
  if (o.html !== null) {
    const dir = dirname(resolve(o.html));
    const ok = await Deno.stat(dir).then((s) => s.isDirectory, () => false);
    if (!ok) {
      print(`Cannot write --html "${o.html}": no such directory "${dir}"`);
      return 1;
    }
  }
  // Only what this run needs: no network for a file, no writing without --html.
  if (o.input !== null) Deno.permissions.revokeSync({ name: "net" });
  if (o.html === null) Deno.permissions.revokeSync({ name: "write" });

  // Ctrl-C stops reading and prints what was found so far. `deno task` forwards the terminal's
  // Ctrl-C, which the process group already got: one keypress arrives twice, a second later counts.
  let firstSignalAt = 0;
  let interrupt!: () => void;
  const interrupted = new Promise<typeof STOP>((resolve) => interrupt = () => resolve(STOP));
  const onSignal = () => {
    const now = Date.now();
    if (firstSignalAt !== 0 && now - firstSignalAt >= 1000) Deno.exit(130);
    firstSignalAt ||= now;
    interrupt();
  };
  Deno.addSignalListener("SIGINT", onSignal);
  try {
    return await backtest(o, from, to, interrupted);
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
  }
}

const STOP = Symbol("stop");

async function backtest(
  o: Options,
  from: number | null,
  to: number | null,
  interrupted: Promise<typeof STOP>,
): Promise<number> {
  let stopped = false;
  interrupted.then(() => stopped = true);
  const logger = processLogger.child({ stage: "backtest" });
  const sides: { dir: string; ruleSet: RuleSet }[] = [];
  try {
    sides.push({ dir: o.rulesDir, ruleSet: await loadRuleSet(o.rulesDir, o.rule) });
    if (o.against !== null) sides.push({ dir: o.against, ruleSet: await loadRuleSet(o.against, o.rule) });
  } catch (err) {
    print((err as Error).message);
    return 1;
  }
  const unknown = o.rule.filter((id) => !sides.some((s) => s.ruleSet.byId.has(id)));
  if (unknown.length > 0) {
    print(`--rule: no rule "${unknown.join('", "')}" in ${sides.map((s) => `"${s.dir}"`).join(" or ")}`);
    return 1;
  }

  const run = new Backtest({
    ruleSets: sides.map((s) => s.ruleSet),
    decode: { maxFutureSkewMs: o.maxFutureSkewMs, requireKey: false },
    series: o.html !== null,
  });

  let batches: AsyncIterable<InputRecord[]>;
  let total: bigint | null = null;
  let source: string;
  let close = () => Promise.resolve();
  if (o.input !== null) {
    batches = readNdjson(o.input, 500);
    source = o.input === "-" ? "stdin" : `"${o.input}"`;
  } else {
    const kafka = createKafka(kafkaSettingsFromEnv(o.brokers), logger, { retries: 5 });
    try {
      const reader = await readRange({ kafka, topic: o.sensorTopic, from, to, logger });
      batches = reader.batches;
      total = reader.total;
      close = reader.close;
    } catch (err) {
      print(`Cannot read topic "${o.sensorTopic}": ${(err as Error)?.message ?? String(err)}`);
      return 1;
    }
    source = `topic "${o.sensorTopic}"` +
      (from !== null ? ` from ${new Date(from).toISOString()}` : "") +
      (to !== null ? ` to ${new Date(to).toISOString()}` : "");
  }

  if (total !== null) logger.info("Backtest reading", { source, records: total });
  const shown = progress(() => total);
  const it = batches[Symbol.asyncIterator]();
  // The reading time: from the first batch to the last one processed (a broker's clean-up after).
  let firstBatchAt: number | null = null;
  let lastBatchAt = 0;
  try {
    // The wait for the next batch (stdin, the broker) is raced with Ctrl-C, which ends it at once.
    for (;;) {
      const next = await Promise.race([it.next(), interrupted]);
      if (next === STOP || next.done) break;
      firstBatchAt ??= performance.now();
      run.process(next.value);
      shown.count(next.value.length);
      lastBatchAt = performance.now();
      if (logger.enabled("debug")) logger.debug("Backtest progress", { records: run.records });
    }
  } catch (err) {
    shown.done();
    print(`Backtest of ${source} failed: ${(err as Error)?.message ?? String(err)}`);
    await close().catch(() => {});
    return 1;
  }
  // Not awaited after Ctrl-C: a reader blocked on stdin only returns once its read does.
  if (stopped) void it.return?.(undefined)?.catch(() => {});
  await close();
  shown.done();
  run.finish();
  const seconds = firstBatchAt === null ? 0 : (lastBatchAt - firstBatchAt) / 1000;
  const report = buildReport(run, sides, { source, interrupted: stopped, seconds });
  if (o.html !== null) {
    try {
      await Deno.writeTextFile(o.html, renderHtml(report));
    } catch (err) {
      print(`Cannot write --html "${o.html}": ${(err as Error).message}`);
      return 1;
    }
    if (!o.json) print(`Wrote ${o.html}`);
  }
  if (o.json) {
    const { series: _, ...json } = report;
    print(JSON.stringify(json));
  } else {
    print(formatText(report));
  }
  return stopped ? 130 : 0;
}

if (import.meta.main) {
  // Whatever was not foreseen still ends in one line and a non-zero exit.
  const code = await main(Deno.args).catch((err) => {
    print(`Backtest failed: ${(err as Error)?.message ?? String(err)}`);
    return 1;
  });
  Deno.exit(code);
}
