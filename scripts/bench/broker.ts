/**
 * The broker a benchmark runs against: the one KAFKA_BROKERS names, or a throwaway local one
 * (scripts/kafka/kafka.sh) that `close` stops and deletes.
 *
 * @module
 */
import { readSettings } from "../../src/config/setting.ts";
import { commands } from "../../src/config/settings.ts";
import { env } from "../../src/env.ts";

const KAFKA_SH = new URL("../kafka/kafka.sh", import.meta.url).pathname;

export interface Broker {
  bootstrap: string;
  /** The kafka.sh directory of a broker we started, null for an external one. */
  dir: string | null;
  close(): Promise<void>;
}

/** Starts a broker in `dir` (created; deleted by `close`) unless KAFKA_BROKERS names one. */
export async function startBroker(dir: string): Promise<Broker> {
  const { brokers } = readSettings(commands.bench.settings, [], env);
  if (brokers.length > 0) return { bootstrap: brokers.join(","), dir: null, close: () => Promise.resolve() };
  const up = await new Deno.Command("bash", {
    args: [KAFKA_SH, "up", "--dir", dir],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  if (!up.success) throw new Error(`Cannot start the local broker (kafka.sh up exited ${up.code})`);
  const bootstrap = new TextDecoder().decode(up.stdout).trim();
  let closed: Promise<void> | null = null;
  return {
    bootstrap,
    dir,
    close: () =>
      closed ??= (async () => {
        await new Deno.Command("bash", {
          args: [KAFKA_SH, "down", "--dir", dir, "--clean"],
          stdout: "null",
          stderr: "null",
        }).output();
      })(),
  };
}

/** Runs a Java main class on the broker's classpath (Kafka's own tools); returns its stdout. */
export async function runKafkaTool(dir: string | null, args: string[]): Promise<string> {
  const out = await new Deno.Command("bash", {
    args: [KAFKA_SH, "run", ...(dir === null ? [] : ["--dir", dir]), "--", ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(`${args[0]} exited ${out.code}: ${new TextDecoder().decode(out.stderr).slice(-2000)}`);
  }
  return text;
}

/** The Kafka version the local broker runs, from the Maven project that fetches it. */
export async function kafkaVersion(): Promise<string> {
  const pom = await Deno.readTextFile(new URL("../kafka/pom.xml", import.meta.url));
  return /<kafka\.version>([^<]+)</.exec(pom)?.[1] ?? "unknown";
}
