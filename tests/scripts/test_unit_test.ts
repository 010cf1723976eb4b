/**
 * `deno task test:unit` runs without Java or a broker because it leaves out `tests/integration/`. This
 * keeps every test that talks to a broker there, so a new one put elsewhere fails here in `deno task test`
 * rather than only on a machine without Java.
 */
import assert from "node:assert/strict";

const TESTS = new URL("../", import.meta.url);
/** What the broker helpers export besides the two that need no broker (`waitFor`, `uniqueNames`). */
/** Assembled, so that this file does not match its own check. */
const BROKER_SCRIPT = ["scripts", "kafka", "kafka.sh"].join("/");
const BROKER_HELPERS = [
  "brokers",
  "kafka",
  "topicEnv",
  "withAdmin",
  "createTopics",
  "produce",
  "readTopic",
  "groupLag",
];

async function* sources(dir: URL, path = ""): AsyncGenerator<string> {
  for await (const entry of Deno.readDir(new URL(path, dir))) {
    const child = `${path}${entry.name}`;
    if (entry.isDirectory) yield* sources(dir, `${child}/`);
    else if (entry.name.endsWith(".ts")) yield child;
  }
}

/** Why a test file with this source talks to a broker, or null. */
function brokerUse(source: string): string | null {
  if (/from "(kafkajs|@platformatic\/kafka)"/.test(source)) return "imports a Kafka client";
  if (source.includes(BROKER_SCRIPT)) return `runs ${BROKER_SCRIPT}`;
  for (const m of source.matchAll(/import\s*\{([^}]*)\}\s*from\s*"[./]*\/helpers\/kafka\.ts"/g)) {
    const names = m[1]!.split(",").map((n) => n.trim().replace(/^type\s+/, "")).filter(Boolean);
    const used = names.filter((n) => BROKER_HELPERS.includes(n));
    if (used.length > 0) return `imports ${used.join(", ")} from tests/helpers/kafka.ts`;
  }
  return null;
}

Deno.test("every test file that talks to a broker is under tests/integration/, which test:unit leaves out", async () => {
  const misplaced: string[] = [];
  for await (const path of sources(TESTS)) {
    if (path.startsWith("integration/") || path.startsWith("helpers/")) continue;
    const why = brokerUse(await Deno.readTextFile(new URL(path, TESTS)));
    if (why) misplaced.push(`tests/${path} ${why}`);
  }
  assert.deepEqual(misplaced, [], "move these under tests/integration/ (same subfolder)");

  const config = JSON.parse(await Deno.readTextFile(new URL("../deno.json", TESTS)));
  assert.match(config.tasks["test:unit"], /--ignore=tests\/integration\/[,\s]/);
});

Deno.test("the broker-use check recognises a Kafka client, the broker script and the broker helpers", () => {
  const from = "from"; // assembled, as BROKER_SCRIPT is
  assert.equal(brokerUse(`import { Kafka } ${from} "kafkajs";`), "imports a Kafka client");
  assert.equal(brokerUse(`args: ["${BROKER_SCRIPT}", "up"]`), `runs ${BROKER_SCRIPT}`);
  assert.equal(
    brokerUse(`import {\n  createTopics,\n  type Foo,\n  waitFor,\n} ${from} "../../helpers/kafka.ts";`),
    "imports createTopics from tests/helpers/kafka.ts",
  );
  assert.equal(brokerUse(`import { uniqueNames, waitFor } ${from} "../helpers/kafka.ts";`), null);
});
