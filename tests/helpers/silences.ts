/** Silences for tests: a store over a file of its own, and the silence most tests create. */
import { FileSilenceLog } from "../../src/notifiers/silences/file.ts";
import type { SilenceInput } from "../../src/notifiers/silences/silence.ts";
import { Silences, type SilencesOptions } from "../../src/notifiers/silences/store.ts";
import { captureLogger } from "./notifiers.ts";

/** A started Silences over `silences.json` in a new temporary folder, and that file's path. */
export async function fileSilences(
  over: Partial<Omit<SilencesOptions, "log">> & { prefix?: string } = {},
): Promise<{ silences: Silences; file: string }> {
  const { prefix = "silences-", logger = captureLogger().logger, ...options } = over;
  const dir = await Deno.makeTempDir({ prefix });
  const file = `${dir}/silences.json`;
  const silences = new Silences({ log: new FileSilenceLog(file), logger, ...options });
  await silences.start();
  return { silences, file };
}

/** A silence on `name` equal to `value`, in force from now until `endsInMs` (an hour by default). */
export function silenceOn(name: string, value: string, endsInMs = 3600_000): SilenceInput {
  return {
    matchers: [{ name, value, is_regex: false, is_equal: true }],
    ends_at: new Date(Date.now() + endsInMs).toISOString(),
    created_by: "tester",
    comment: "why",
  };
}
