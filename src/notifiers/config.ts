/**
 * The notifier configuration file (`rules/notifiers.yaml`). This zod schema is the single source:
 * the loader validates with it and `rules/notifiers.schema.json` is generated from it for editors.
 *
 * @module
 */
import { z } from "zod";
import { Priority, SensorType } from "../contract/schemas.ts";
import { getEnv } from "../env.ts";
import { registerSecret } from "../log.ts";
import { Duration } from "../rules/schema.ts";
import { issueMessage, parseYaml, type Position } from "../yaml.ts";

const OneOrMany = <T extends z.ZodType>(t: T) => z.union([t, z.array(t).min(1)]);
const InstanceName = z.string().regex(/^[a-z0-9][a-z0-9_-]*$/i, "must be letters, digits, - or _");

export const NotifierInstanceConfig = z.strictObject({
  name: InstanceName.describe("The name routes refer to"),
  plugin: z.string().min(1).describe(
    'A plugin name ("console", "webhook", "slack", or the name a module in plugins/ declares) or a path to a module',
  ),
  options: z.record(z.string(), z.unknown()).default({}).describe(
    "Validated by the plugin's own schema; ${ENV_VAR} is replaced by the variable's value",
  ),
});

export const Match = z.strictObject({
  priority: OneOrMany(Priority).optional(),
  sensor_type: OneOrMany(SensorType).optional(),
  rule_id: OneOrMany(z.string()).optional(),
  labels: z.record(z.string(), z.string()).optional().describe("Every label listed must have this value"),
});
export type Match = z.infer<typeof Match>;

export const Route = z.strictObject({
  match: Match.default({}).describe("All fields given must match; an empty match matches every alert"),
  receivers: z.array(InstanceName).min(1).describe("Notifier instances that get the matching alerts"),
  continue: z.boolean().default(false).describe("Keep trying the next routes after this one matched"),
  group_by: z.array(z.string()).optional().describe(
    'Alert fields (or "labels.x") whose values form a group; grouping is on when group_wait is set',
  ),
  group_wait: Duration.optional().describe(
    "How long a new group collects alerts before its first notification",
  ),
  group_interval: Duration.optional().describe(
    "The least time between two notifications of one group (default: group_wait)",
  ),
  repeat_interval: Duration.optional().describe(
    "Re-send a group's still-firing alerts when it sent nothing for this long (default: never)",
  ),
});
export type Route = z.infer<typeof Route>;

export const Delivery = z.strictObject({
  timeout: Duration.optional().describe("One try of a notifier is abandoned after this long"),
  max_attempts: z.int().min(1).max(1000).optional().describe(
    "A cap on tries besides give_up_after (default: none, the time budget alone decides)",
  ),
  backoff_base: Duration.optional(),
  backoff_max: Duration.optional(),
  give_up_after: Duration.optional().describe(
    "A notification not delivered this long after it reached the notifier (or its group was sent) goes to the DLQ",
  ),
  max_in_flight: z.int().min(1).max(1000).optional().describe(
    "Notifications in flight per notifier instance",
  ),
  max_queued: z.int().min(1).max(1_000_000).optional().describe(
    "Unfinished notifications per notifier instance; what happens beyond it is on_full",
  ),
  on_full: z.enum(["dead_letter", "pause"]).optional().describe(
    "A notifier holding max_queued: dead_letter (default) sends its new notifications to the DLQ at once, so it costs only its own; pause stops the input partitions that feed it, and so every receiver they feed",
  ),
  breaker_failures: z.int().min(1).optional().describe("Consecutive failures that open the circuit breaker"),
  breaker_cooldown: Duration.optional().describe("How long an open breaker waits before a probe"),
});
export type Delivery = z.infer<typeof Delivery>;

export const NotifiersFile = z.strictObject({
  plugin_paths: z.array(z.string()).default([]).describe("Extra plugin modules to load (paths)"),
  notifiers: z.array(NotifierInstanceConfig).default([]),
  routes: z.array(Route).default([]),
  default_receivers: z.array(InstanceName).min(1).default(["console"]).describe(
    "Receivers of an alert that no route matched",
  ),
  delivery: Delivery.default({}),
}).superRefine((file, ctx) => {
  const names = new Set<string>();
  file.notifiers.forEach((n, i) => {
    if (names.has(n.name)) {
      ctx.addIssue({
        code: "custom",
        path: ["notifiers", i, "name"],
        message: `Duplicate notifier "${n.name}"`,
      });
    }
    names.add(n.name);
  });
  // "console" always exists, so the default route works in a file that declares nothing.
  names.add("console");
  const check = (list: string[], path: (string | number)[]) =>
    list.forEach((r, i) => {
      if (!names.has(r)) {
        ctx.addIssue({ code: "custom", path: [...path, i], message: `Unknown notifier "${r}"` });
      }
    });
  file.routes.forEach((r, i) => check(r.receivers, ["routes", i, "receivers"]));
  check(file.default_receivers, ["default_receivers"]);
});
export type NotifiersFile = z.infer<typeof NotifiersFile>;

/** A problem in the file, located like the rule loader's: `file:line:col message`. */
export class NotifierConfigError extends SyntaxError {
  /** The message without its location. */
  readonly detail: string;
  /** Every problem found, this one first (one entry unless the schema found several). */
  readonly problems: NotifierConfigProblem[];
  constructor(
    readonly file: string,
    readonly line: number,
    readonly column: number,
    message: string,
    options?: ErrorOptions & { more?: NotifierConfigProblem[] },
  ) {
    const more = options?.more ?? [];
    const suffix = more.length === 0
      ? ""
      : ` (and ${more.length} more problem${more.length === 1 ? "" : "s"})`;
    super(`${file}:${line}:${column} ${message}${suffix}`, options);
    this.name = "NotifierConfigError";
    this.detail = message;
    this.problems = [{ file, line, column, message }, ...more];
  }
}

export interface NotifierConfigProblem {
  file: string;
  line: number;
  column: number;
  message: string;
}

/**
 * Parses and validates the file's text, replacing `${ENV_VAR}` in option values (and registering
 * the values as secrets). Throws a NotifierConfigError for the first problem found.
 */
export function parseNotifiersFile(
  file: string,
  text: string,
  env: (name: string) => string | undefined = getEnv,
): ParsedNotifiersFile {
  const doc = parseYaml(file, text);
  const first = doc.problems[0];
  if (first !== undefined) throw new NotifierConfigError(file, first.line, first.column, first.message);
  const keys = (path: readonly PropertyKey[]) =>
    path.filter((k): k is string | number => typeof k !== "symbol");
  const locate = (path: readonly PropertyKey[]) => doc.locateAtKey(keys(path));
  // An unknown key is located at the key itself: its mapping may start lines earlier.
  const locateKey = (path: readonly PropertyKey[], key: string) => doc.locateKey([...keys(path), key]);
  const raw = (doc.value ?? {}) as Record<string, unknown>;
  const parsed = NotifiersFile.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue): NotifierConfigProblem => {
      const p = issue.code === "unrecognized_keys" && issue.keys.length > 0
        ? locateKey(issue.path, issue.keys[0]!)
        : locate(issue.path);
      const field = issue.path.length > 0 ? `Field "${issue.path.map(String).join(".")}": ` : "";
      return { file, line: p.line, column: p.column, message: `${field}${issueMessage(issue)}` };
    }).sort((a, b) => a.line - b.line || a.column - b.column);
    const [first, ...more] = problems;
    throw new NotifierConfigError(file, first!.line, first!.column, first!.message, { more });
  }
  parsed.data.notifiers.forEach((n, i) => {
    n.options = interpolate(n.options, (name, path) => {
      const value = env(name);
      if (value === undefined) {
        const p = locate(["notifiers", i, "options", ...path]);
        throw new NotifierConfigError(
          file,
          p.line,
          p.column,
          `Environment variable "${name}" is not set (or not in the task's --allow-env list)`,
        );
      }
      registerSecret(value);
      return value;
    }) as Record<string, unknown>;
  });
  return { config: parsed.data, locate: (path) => locate(["notifiers", ...path]) };
}

export interface ParsedNotifiersFile {
  config: NotifiersFile;
  /** Line and column of `notifiers.<path>` in the file (or of its nearest existing parent). */
  locate(path: (string | number)[]): Position;
}

function interpolate(
  value: unknown,
  lookup: (name: string, path: (string | number)[]) => string,
  path: (string | number)[] = [],
): unknown {
  if (typeof value === "string") {
    return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_m, name: string) => lookup(name, path));
  }
  if (Array.isArray(value)) return value.map((v, i) => interpolate(v, lookup, [...path, i]));
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, interpolate(v, lookup, [...path, k])]),
    );
  }
  return value;
}
