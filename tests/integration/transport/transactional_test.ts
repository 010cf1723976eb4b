/**
 * TransactionalOutput against the real broker: the answers a busy or misconfigured cluster gives.
 */
import assert from "node:assert/strict";
import { createLogger } from "../../../src/log.ts";
import { TransactionalOutput } from "../../../src/transport/transactional.ts";
import { createTopics, kafka, uniqueNames } from "../../helpers/kafka.ts";

function capture() {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({
    level: "info",
    sink: { write: (l) => lines.push(JSON.parse(l)), pretty: false },
  });
  return { lines, logger };
}

Deno.test("TransactionalOutput says in one warning that another producer took its transactional id over when it is fenced", async () => {
  const n = uniqueNames("fenced");
  await createTopics([n.events, n.alerts], 1);
  const a = capture();
  const transactionalId = `${n.group}-${n.events}-0`;
  const first = new TransactionalOutput(kafka(), {
    transactionalId,
    groupId: n.group,
    logger: a.logger,
    onFailure: () => {},
  });
  const second = new TransactionalOutput(kafka(), {
    transactionalId,
    groupId: n.group,
    logger: capture().logger,
    onFailure: () => {},
  });
  try {
    await first.connect();
    await first.send([{ topic: n.alerts, key: "k", value: "one" }]);
    // The second producer with the same transactional id takes it over: the first is fenced.
    await second.send([{ topic: n.alerts, key: "k", value: "other" }]);
    await assert.rejects(first.send([{ topic: n.alerts, key: "k", value: "two" }]));
    // A partition's previous owner fenced by its next one is a rebalance, not a fault.
    assert.deepEqual(a.lines.filter((l) => l.level === "error"), []);
    const warnings = a.lines.filter((l) => l.level === "warn");
    assert.equal(warnings.length, 1, JSON.stringify(warnings));
    assert.match(
      String(warnings[0]!.msg),
      new RegExp(`Another producer took the transactional id "${transactionalId}" over .*fenced this one`),
    );
  } finally {
    await first.close().catch(() => {});
    await second.close();
  }
});

Deno.test("TransactionalOutput retries CONCURRENT_TRANSACTIONS instead of aborting: offsets-only commits right after a commit", async () => {
  const n = uniqueNames("concurrent-txn");
  await createTopics([n.events, n.alerts], 1);
  const { lines, logger } = capture();
  const failures: Error[] = [];
  const output = new TransactionalOutput(kafka(), {
    transactionalId: `${n.group}-t`,
    groupId: n.group,
    logger,
    onFailure: (err) => failures.push(err),
  });
  try {
    await output.connect();
    // A transaction that starts with AddOffsetsToTxn while the broker still writes the previous
    // commit's markers is answered CONCURRENT_TRANSACTIONS (kafkajs does not retry that request).
    for (let i = 0; i < 40; i++) {
      await output.commit([{ topic: n.alerts, key: "k", value: `v${i}` }], []);
      await output.commit([], [{ topic: n.events, partitions: [{ partition: 0, offset: String(i + 1) }] }]);
    }
    assert.deepEqual(failures.map((e) => e.message), []);
    assert.deepEqual(lines.filter((l) => l.level === "error"), []);
    assert.equal(output.transactions, 80);
  } finally {
    await output.close();
  }
});
