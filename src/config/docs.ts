/**
 * What is generated from the settings: each command's USAGE, the README's Configuration table and each
 * task's `--allow-env` list. `deno task config:docs` writes the last two; tests/config/docs_test.ts
 * fails when they differ from the settings.
 *
 * @module
 */
import { allowedEnv, type Command, commands, LIBRARY_VARIABLES, NOTIFIER_VARIABLES } from "./settings.ts";
import type { Setting } from "./setting.ts";

/** The README lines between which the table is generated. */
export const TABLE_BEGIN =
  "<!-- Generated from src/config/settings.ts by `deno task config:docs`: edit there -->";
export const TABLE_END = "<!-- End of the generated table -->";

function flagName(s: Setting): string | null {
  if (s.flag === undefined) return null;
  const short = s.short === undefined ? "" : `-${s.short}, `;
  return `${short}--${s.flag}${s.arg === undefined ? "" : ` ${s.arg}`}`;
}

function defaultText(s: Setting): string | null {
  if (s.defaultDoc !== undefined) return s.defaultDoc;
  const v = s.default;
  if (s.kind.presence) return null;
  if (v === null || v === "" || (Array.isArray(v) && v.length === 0)) return "unset";
  return Array.isArray(v) ? v.join(",") : String(v);
}

/** A command's help text: its flags, then the variables it reads without a flag. */
export function usage(command: Command): string {
  // Help last, as command-line tools list it.
  const settings = Object.values(command.settings).sort((a, b) =>
    Number(a.flag === "help") - Number(b.flag === "help")
  );
  const rows: [string, string][] = [];
  for (const s of settings) {
    const name = flagName(s);
    if (name === null) continue;
    const def = defaultText(s);
    // "default unset" says nothing the doc line does not.
    const notes = [
      s.env === undefined ? null : `or ${s.env}`,
      def === null || def === "unset" ? null : `default ${def}`,
    ]
      .filter((n) => n !== null);
    rows.push([name, `${s.doc}${notes.length > 0 ? ` (${notes.join("; ")})` : ""}`]);
  }
  const envRows: [string, string][] = settings.filter((s) => s.flag === undefined && s.env !== undefined)
    .map((s) => {
      const def = defaultText(s);
      return [s.env!, `${s.doc}${def === null || def === "unset" ? "" : ` (default ${def})`}`];
    });
  const width = Math.max(...[...rows, ...envRows].map(([n]) => n.length)) + 2;
  const lines = (list: [string, string][]) => list.map(([n, d]) => `  ${n.padEnd(width)}${d}`);
  const out = [`Usage: ${command.synopsis}`];
  if (rows.length > 0) out.push("", "Options:", ...lines(rows));
  if (envRows.length > 0) out.push("", "Environment:", ...lines(envRows));
  return out.join("\n");
}

const cell = (s: string) => s.replaceAll("|", "\\|");
const code = (s: string) => `\`${cell(s)}\``;

/** The rows of the README's Configuration table, as cells. */
export function tableRows(): string[][] {
  // One row per name; where commands read it differently, each says its own.
  const rows = new Map<string, { names: string; uses: { tasks: string; def: string; doc: string }[] }>();
  for (const command of Object.values(commands)) {
    for (const s of Object.values(command.settings) as Setting[]) {
      if (s.flag === "help") continue;
      const names = [flagName(s), s.env ?? null].filter((n) => n !== null).map(code).join(" / ");
      const row = rows.get(names) ?? { names, uses: [] };
      row.uses.push({ tasks: command.tasks.join(", "), def: defaultText(s) ?? "off", doc: s.doc });
      rows.set(names, row);
    }
  }
  const per = (uses: { tasks: string }[], pick: (u: never) => string) => {
    const values = uses.map(pick as (u: unknown) => string);
    return new Set(values).size === 1
      ? values[0]!
      : uses.map((u, i) => `${u.tasks.split(", ")[0]}: ${values[i]}`).join("; ");
  };
  const out = [...rows.values()].map((r) => [
    r.names,
    cell(per(r.uses, (u: { def: string }) => u.def)),
    r.uses.map((u) => u.tasks).join(", "),
    cell(per(r.uses, (u: { doc: string }) => u.doc)),
  ]);
  out.push([
    NOTIFIER_VARIABLES.map(code).join(", "),
    "unset",
    Object.values(commands).filter((c) => c.notifierVariables).flatMap((c) => c.tasks).join(", "),
    "Read only as `${VAR}` in notifiers.yaml; add yours to NOTIFIER_VARIABLES",
  ]);
  for (const [lib, names] of Object.entries(LIBRARY_VARIABLES)) {
    out.push([
      names.map(code).join(", "),
      "unset",
      Object.values(commands).filter((c) => (c.libraries as readonly string[]).includes(lib))
        .flatMap((c) => c.tasks).join(", "),
      `Read by ${lib} itself, which fails without access to them`,
    ]);
  }
  return out;
}

/** The table as markdown (deno fmt pads its columns). */
export function readmeTable(): string {
  const rows = [
    ["Flag / variable", "Default", "Read by", "What it does"],
    ["---", "---", "---", "---"],
    ...tableRows(),
  ];
  return rows.map((r) => `| ${r.join(" | ")} |`).join("\n");
}

/** `text` with the part between the markers replaced by `table`. */
export function withTable(readme: string, table: string): string {
  const begin = readme.indexOf(TABLE_BEGIN);
  const end = readme.indexOf(TABLE_END);
  if (begin < 0 || end < begin) {
    throw new TypeError(`README.md has no "${TABLE_BEGIN}" ... "${TABLE_END}" section`);
  }
  return `${readme.slice(0, begin + TABLE_BEGIN.length)}\n\n${table}\n\n${readme.slice(end)}`;
}

/** deno.json's text with each task's `--allow-env=` list as its command's settings say. */
export function withAllowEnv(denoJson: string): string {
  let out = denoJson;
  for (const command of Object.values(commands)) {
    for (const task of command.tasks) {
      const pattern = new RegExp(`("${task.replace(":", "\\:")}": "[^"]*--allow-env=)[A-Za-z0-9_,]*`);
      if (!pattern.test(out)) throw new TypeError(`Task "${task}" in deno.json has no --allow-env= list`);
      out = out.replace(pattern, `$1${allowedEnv(command).join(",")}`);
    }
  }
  return out;
}

if (import.meta.main) {
  const root = new URL("../../", import.meta.url);
  const readme = new URL("README.md", root);
  const denoJson = new URL("deno.json", root);
  await Deno.writeTextFile(readme, withTable(await Deno.readTextFile(readme), readmeTable()));
  await Deno.writeTextFile(denoJson, withAllowEnv(await Deno.readTextFile(denoJson)));
  // The table's columns are padded the way deno fmt pads them, so a check after fmt passes.
  const fmt = await new Deno.Command("deno", { args: ["fmt", "-q", "README.md", "deno.json"], cwd: root })
    .output();
  if (!fmt.success) throw new Error(`deno fmt exited ${fmt.code}`);
  Deno.stdout.writeSync(
    new TextEncoder().encode(
      "Wrote the Configuration table of README.md and deno.json's --allow-env lists\n",
    ),
  );
}
