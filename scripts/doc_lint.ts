/**
 * `deno task doc:lint`: `deno doc --lint` of the plugin API (the package's `./plugin` export), which a
 * plugin author reads first. Every diagnostic fails it but the ones in `KNOWN`, each with its reason;
 * a known one that is no longer reported fails too, so that the list only shrinks.
 *
 * @module
 */
import { print } from "../src/log.ts";

/** A diagnostic that cannot be fixed yet, and why. */
export interface KnownDiagnostic {
  /** The lint code, as in `error[private-type-ref]`. */
  code: string;
  /** Matched against the diagnostic's whole text (message, location and source lines). */
  match: RegExp;
  /** Why it stays. */
  why: string;
}

/** The entry points checked: the package's `./plugin` export. */
export const ENTRY_POINTS: readonly string[] = ["src/notifiers/plugin.ts"];

/** The diagnostics that stay for now. */
export const KNOWN: readonly KnownDiagnostic[] = [
  {
    code: "private-type-ref",
    match: /references private type '(Zod[A-Za-z]+|output)'/,
    why: "zod's own types (an options schema is a zod schema): Deno exempts other packages' types " +
      "(denoland/deno#34339) but not npm ones, whose declaration files are file: modules to deno doc",
  },
];

/** The diagnostics of `deno doc --lint` output (without colours), one text each. */
export function diagnostics(output: string): { code: string; text: string }[] {
  const found: { code: string; text: string }[] = [];
  for (const block of output.split(/^(?=error\[)/m)) {
    const code = /^error\[([a-z-]+)\]/.exec(block)?.[1];
    if (code !== undefined) found.push({ code, text: block.replace(/^error: Found \d+ .*$/m, "").trimEnd() });
  }
  return found;
}

/** What fails the check: diagnostics not in `known`, and entries of `known` that matched nothing. */
export function problems(
  output: string,
  known: readonly KnownDiagnostic[],
): { unexpected: string[]; stale: KnownDiagnostic[] } {
  const used = new Set<KnownDiagnostic>();
  const unexpected: string[] = [];
  for (const d of diagnostics(output)) {
    const k = known.find((k) => k.code === d.code && k.match.test(d.text));
    if (k) used.add(k);
    else unexpected.push(d.text);
  }
  return { unexpected, stale: known.filter((k) => !used.has(k)) };
}

if (import.meta.main) {
  const out = await new Deno.Command("deno", {
    args: ["doc", "--lint", ...ENTRY_POINTS],
    env: { NO_COLOR: "1" },
    stdout: "null",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  if (out.code !== 0 && diagnostics(stderr).length === 0) {
    // Not a lint finding (a module that does not resolve, a syntax error): show it as it is.
    print(stderr.trimEnd());
    Deno.exit(1);
  }
  const { unexpected, stale } = problems(stderr, KNOWN);
  for (const text of unexpected) print(`${text}\n`);
  for (const k of stale) {
    print(`Known ${k.code} ${k.match} is no longer reported: remove it from scripts/doc_lint.ts`);
  }
  if (unexpected.length > 0 || stale.length > 0) {
    print(
      `deno doc --lint ${ENTRY_POINTS.join(" ")}: ${unexpected.length} new problems, ${stale.length} stale`,
    );
    Deno.exit(1);
  }
  print(`deno doc --lint ${ENTRY_POINTS.join(" ")}: clean but for ${KNOWN.length} known problems`);
}
