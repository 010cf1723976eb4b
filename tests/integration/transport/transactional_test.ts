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

Deno.test("TransactionalOutput commits nothing queued before it told of a failure (a batch evaluated on state about to be rebuilt)", async () => {
  const n = uniqueNames("fenced-late");
  await createTopics([n.events, n.alerts], 1);
  const transactionalId = `${n.group}-${n.events}-0`;
  let failures = 0;
  let late: { queuedAfterFailure: boolean; done: Promise<string> } | null = null;
  // The engine's next batch may be queued while the failed transaction is cleaned up: here, as soon as
  // the failure is logged (a microtask, once the failed transaction's handling yields).
  const first: TransactionalOutput = new TransactionalOutput(kafka(), {
    transactionalId,
    groupId: n.group,
    logger: createLogger({
      level: "warn",
      sink: {
        write: () =>
          queueMicrotask(() => {
            late ??= {
              queuedAfterFailure: failures > 0,
              done: first.send([{ topic: n.alerts, key: "k", value: "late" }]).then(
                () => "committed",
                () => "rejected",
              ),
            };
          }),
        pretty: false,
      },
    }),
    onFailure: () => failures++,
  });
  const second = new TransactionalOutput(kafka(), {
    transactionalId,
    groupId: n.group,
    logger: capture().logger,
    onFailure: () => {},
  });
  try {
    await first.connect();
    await second.connect();
    await assert.rejects(first.send([{ topic: n.alerts, key: "k", value: "fenced" }]));
    assert.notEqual(late, null, "no commit was queued as the failure was handled");
    const { queuedAfterFailure, done } = late!;
    const outcome = await done;
    // The owner rebuilds its state in `onFailure`: a commit queued before it carries changes of the
    // rolled-back state, and must fail with the transaction.
    assert.ok(
      outcome === "rejected" || queuedAfterFailure,
      `a commit queued before onFailure was ${outcome}`,
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
