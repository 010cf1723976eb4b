import assert from "node:assert/strict";
import { type NotifierConfigError, parseNotifiersFile } from "../../src/notifiers/config.ts";
import { redact } from "../../src/log.ts";

const env = (vars: Record<string, string>) => (name: string) => vars[name];

Deno.test("parseNotifiersFile() replaces ${ENV_VAR} in options and registers the value as a secret", () => {
  const { config } = parseNotifiersFile(
    "n.yaml",
    'notifiers:\n  - name: hook\n    plugin: webhook\n    options: { url: "https://x/${HOOK_PATH}" }\n',
    env({ HOOK_PATH: "s3cr3t-path-123" }),
  );
  assert.equal(config.notifiers[0]!.options.url, "https://x/s3cr3t-path-123");
  assert.equal(redact("at https://x/s3cr3t-path-123"), "at https://x/[REDACTED]");
  assert.deepEqual(config.default_receivers, ["console"]);
});

Deno.test("parseNotifiersFile() names file:line:col of an unset environment variable", () => {
  assert.throws(
    () =>
      parseNotifiersFile(
        "n.yaml",
        "notifiers:\n  - name: s\n    plugin: slack\n    options:\n      url: ${NOPE}\n",
        env({}),
      ),
    (e: NotifierConfigError) =>
      e.message ===
        'n.yaml:5:12 Environment variable "NOPE" is not set (or not in the task\'s --allow-env list)',
  );
});

Deno.test("parseNotifiersFile() names file:line:col of a route to an unknown notifier", () => {
  assert.throws(
    () => parseNotifiersFile("n.yaml", "routes:\n  - receivers: [console, pager]\n", env({})),
    (e: NotifierConfigError) => e.line === 2 && e.column === 26 && /Unknown notifier "pager"/.test(e.message),
  );
});

Deno.test("parseNotifiersFile() reports a YAML syntax error with its position", () => {
  assert.throws(
    () => parseNotifiersFile("n.yaml", "routes: [\n", env({})),
    (e: unknown) => e instanceof SyntaxError && /^n\.yaml:\d+:\d+ /.test(e.message),
  );
});

Deno.test("parseNotifiersFile() rejects an unknown priority in a match", () => {
  assert.throws(
    () =>
      parseNotifiersFile(
        "n.yaml",
        "routes:\n  - match: { priority: urgent }\n    receivers: [console]\n",
        env({}),
      ),
    (e: NotifierConfigError) => e.line === 2 && /Field "routes.0.match.priority"/.test(e.message),
  );
});
