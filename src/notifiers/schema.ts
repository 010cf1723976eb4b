/**
 * `deno task notifiers:schema`: writes `rules/notifiers.schema.json` for editors, generated from the
 * zod schema the loader validates with.
 *
 * @module
 */
import { z } from "zod";
import { print } from "../log.ts";
import { NotifiersFile } from "./config.ts";

export function notifiersJsonSchema(): unknown {
  return z.toJSONSchema(NotifiersFile, { io: "input", unrepresentable: "any" });
}

if (import.meta.main) {
  const path = `${(Deno.args[0] ?? "rules").replace(/\/+$/, "")}/notifiers.schema.json`;
  await Deno.writeTextFile(path, JSON.stringify(notifiersJsonSchema(), null, 2) + "\n");
  print(`Wrote ${path}`);
}
