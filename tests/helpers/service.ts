/** Runs the real service (`main.ts`) as a child process, the way an operator does. */

/** The permissions of `deno task start`, so the tests prove the task grants enough. */
export const SERVICE_PERMISSIONS: string[] = (() => {
  const tasks = JSON.parse(Deno.readTextFileSync(new URL("../../deno.json", import.meta.url))).tasks;
  return (tasks.start as string).split(/\s+/).filter((a) => a.startsWith("--allow-"));
})();

export interface RunningService {
  child: Deno.ChildProcess;
  /** Everything written to stdout/stderr so far. */
  stdout(): string;
  stderr(): string;
  /** Resolves when a stdout or stderr line matches. */
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<string>;
  stop(signal?: Deno.Signal): Promise<Deno.CommandStatus>;
}

/** `stdin: "piped"` keeps the child's standard input open for the test to write (`--input -`). */
export function startService(
  env: Record<string, string>,
  args: string[] = [],
  opts: { stdin?: "piped" | "null" } = {},
): RunningService {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...SERVICE_PERMISSIONS, "main.ts", ...args],
    // A free port unless a test asks for one: 8080 may be taken by a service the developer runs.
    // The default worker count (one per core): what the suite tests is what an operator runs.
    env: { LOG_LEVEL: "info", NO_COLOR: "1", HTTP_PORT: "0", ...env },
    stdin: opts.stdin ?? "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let out = "";
  let err = "";
  const waiters: { pattern: RegExp; resolve: (line: string) => void; reject: (e: Error) => void }[] = [];
  const check = () => {
    for (const w of [...waiters]) {
      const line = (out + "\n" + err).split("\n").find((l) => w.pattern.test(l));
      if (line !== undefined) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(line);
      }
    }
  };
  const pump = async (stream: ReadableStream<Uint8Array>, append: (s: string) => void) => {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      append(chunk);
      check();
    }
  };
  const pumps = Promise.all([pump(child.stdout, (s) => out += s), pump(child.stderr, (s) => err += s)]);
  let exited: Deno.CommandStatus | null = null;
  child.status.then((s) => {
    exited = s;
    for (const w of waiters.splice(0)) {
      w.reject(new Error(`Service exited with code ${s.code} first.\nstderr:\n${err.slice(-3000)}`));
    }
  });
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    waitForLine(pattern, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () =>
            reject(
              new Error(`No line matching ${pattern} within ${timeoutMs} ms.\nstderr:\n${err.slice(-3000)}`),
            ),
          timeoutMs,
        );
        waiters.push({
          pattern,
          resolve: (l) => {
            clearTimeout(timer);
            resolve(l);
          },
          reject: (e) => {
            clearTimeout(timer);
            reject(e);
          },
        });
        check();
        if (exited !== null) {
          waiters.pop()?.reject(new Error(`Service already exited with code ${exited.code}`));
        }
      });
    },
    async stop(signal: Deno.Signal = "SIGTERM") {
      try {
        child.kill(signal);
      } catch { /* already exited */ }
      const status = await child.status;
      await pumps;
      return status;
    },
  };
}

/** The base URL the service's HTTP server is bound to, from its "HTTP listening" log line. */
export async function httpUrl(service: RunningService, timeoutMs = 30_000): Promise<string> {
  const line = await service.waitForLine(/"msg":"HTTP listening"/, timeoutMs);
  const url = (JSON.parse(line) as { url?: unknown }).url;
  if (typeof url !== "string") throw new TypeError(`No url in the line: ${line}`);
  return url;
}
