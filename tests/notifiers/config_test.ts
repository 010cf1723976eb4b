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

Deno.test("parseNotifiersFile() points an unknown key at the key's own line, not at its mapping's first line", () => {
  assert.throws(
    () => parseNotifiersFile("n.yaml", "delivery:\n  timeout: 5s\n  bogus: 1\n", env({})),
    (e: NotifierConfigError) => e.message === 'n.yaml:3:3 Field "delivery": Unrecognized key: "bogus"',
  );
});

Deno.test("parseNotifiersFile() reports every problem of the file, each with its line", () => {
  assert.throws(
    () =>
      parseNotifiersFile(
        "n.yaml",
        "routes:\n  - match:\n      priority: urgent\n    receivers: [console]\ndelivery:\n  max_in_flight: 0\n  bogus: 1\n",
        env({}),
      ),
    (e: NotifierConfigError) => {
      assert.deepEqual(e.problems.map((p) => `${p.line}:${p.column} ${p.message}`), [
        '3:17 Field "routes.0.match.priority": expected one of "low"|"normal"|"high"|"critical"',
        '6:18 Field "delivery.max_in_flight": Too small: expected number to be >=1',
        '7:3 Field "delivery": Unrecognized key: "bogus"',
      ]);
      assert.match(e.message, /^n\.yaml:3:17 .* \(and 2 more problems\)$/);
      return true;
    },
  );
});

Deno.test("parseNotifiersFile() points a wrong block value at its key's line, not the line after", () => {
  assert.throws(
    () =>
      parseNotifiersFile(
        "n.yaml",
        "notifiers:\n  - name: a\n    plugin: webhook\n    options:\n      - 1\n",
        env({}),
      ),
    (e: NotifierConfigError) =>
      e.line === 4 && e.column === 5 && /Field "notifiers\.0\.options"/.test(e.message),
  );
});

Deno.test("parseNotifiersFile() names file:line:col of an alias to an anchor defined after it", () => {
  assert.throws(
    () => parseNotifiersFile("n.yaml", "default_receivers: *later\nx: &later [console]\n", env({})),
    (e: unknown) => e instanceof SyntaxError && e.message.startsWith("n.yaml:1:20 "),
  );
});
