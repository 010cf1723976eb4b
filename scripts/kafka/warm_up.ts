/**
 * `kafka.sh up` calls this once the broker is ready: it has the broker create __consumer_offsets and
 * __transaction_state now (finding a group's and a transaction's coordinator creates them) and fetch
 * its first producer-id block (InitProducerId), so that the first test does not wait on them and
 * clients do not log COORDINATOR_NOT_AVAILABLE / COORDINATOR_LOAD_IN_PROGRESS.
 *
 * Usage: deno run --allow-net=HOST:PORT --allow-env=... scripts/kafka/warm_up.ts HOST:PORT
 *
 * @module
 */
import process from "node:process";
import { Kafka, logLevel } from "kafkajs";
import { print } from "../../src/log.ts";

const ID = "kafka-sh-warmup";
const DEADLINE_MS = 30_000;

// kafkajs arms a negative timer whenever it is not throttled (see src/transport/kafka.ts): not news.
process.removeAllListeners("warning");
process.on("warning", (w: Error) => {
  if (w.name !== "TimeoutNegativeWarning") print(`${w.name}: ${w.message}`);
});

async function warmUp(bootstrap: string): Promise<void> {
  // kafkajs retries what is not available yet (the coordinators while their topic is created).
  const kafka = new Kafka({
    clientId: ID,
    brokers: [bootstrap],
    logLevel: logLevel.NOTHING,
    retry: { retries: 100, initialRetryTime: 100, maxRetryTime: 1000 },
  });
  const admin = kafka.admin();
  const producer = kafka.producer({ idempotent: true, transactionalId: ID, maxInFlightRequests: 1 });
  try {
    await admin.connect();
    await admin.describeGroups([ID]); // the group coordinator: __consumer_offsets
    await producer.connect(); // idempotent: InitProducerId, the first producer-id block
    const transaction = await producer.transaction(); // the transaction coordinator: __transaction_state
    await transaction.abort(); // nothing was sent: no EndTxn, nothing left open
  } finally {
    await producer.disconnect();
    await admin.disconnect();
  }
}

if (import.meta.main) {
  const bootstrap = Deno.args[0];
  if (bootstrap === undefined || !/^[^:]+:\d+$/.test(bootstrap)) {
    print("Usage: warm_up.ts HOST:PORT");
    Deno.exit(2);
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      warmUp(bootstrap),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`not done after ${DEADLINE_MS} ms`)), DEADLINE_MS);
      }),
    ]);
  } catch (err) {
    print(`Warm-up of ${bootstrap} failed: ${(err as Error).message}`);
    Deno.exit(1);
  } finally {
    clearTimeout(timer);
  }
}
