/**
 * Silences in embedded and replay modes: one JSON file (`SILENCES_FILE`), rewritten whole on each
 * change through a temporary file and a rename, so a crash leaves the old file or the new one. The
 * alerts they hold are kept the same way, in a file of their own beside it.
 *
 * @module
 */
import type { Silence } from "./silence.ts";
import type { SilenceLog } from "./store.ts";

export class FileSilenceLog<T extends { id: string } = Silence> implements SilenceLog<T> {
  readonly #path: string;
  readonly #all = new Map<string, T>();
  #writing: Promise<void> = Promise.resolve();

  constructor(path: string) {
    this.#path = path;
  }

  async start(apply: (id: string, silence: unknown) => void): Promise<void> {
    let text: string;
    try {
      text = await Deno.readTextFile(this.#path);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return;
      throw new Error(`Cannot read the silences file "${this.#path}"`, { cause: err });
    }
    let records: unknown;
    try {
      records = JSON.parse(text);
    } catch (err) {
      throw new SyntaxError(`The silences file "${this.#path}" is not JSON: ${(err as Error).message}`, {
        cause: err,
      });
    }
    if (!Array.isArray(records)) {
      throw new TypeError(`The silences file "${this.#path}" must hold a JSON array of silences`);
    }
    for (const r of records) {
      const id = (r as { id?: unknown })?.id;
      if (typeof id !== "string") continue;
      this.#all.set(id, r as T);
      apply(id, r);
    }
  }

  write(id: string, record: T | null): Promise<void> {
    if (record === null) this.#all.delete(id);
    else this.#all.set(id, record);
    const text = JSON.stringify([...this.#all.values()], null, 2) + "\n";
    // One write at a time, in call order: the last one holds every change.
    this.#writing = this.#writing.catch(() => {}).then(async () => {
      const tmp = `${this.#path}.tmp`;
      await Deno.writeTextFile(tmp, text);
      await Deno.rename(tmp, this.#path);
    });
    return this.#writing;
  }

  async close(): Promise<void> {
    await this.#writing.catch(() => {});
  }
}
