/**
 * The exactly-once engine against the real broker, when a transaction fails under it.
 */
import assert from "node:assert/strict";
import { createLogger } from "../../../src/log.ts";
import { Pipeline } from "../../../src/pipeline.ts";
import { KafkaSource } from "../../../src/source/kafka.ts";
import { RuleRegistry } from "../../../src/rules/registry.ts";
import { exactlyOnceEngine } from "../../../src/state/exactly_once.ts";
import { createKafka, KafkaOutput, kafkaSettingsFromEnv } from "../../../src/transport/kafka.ts";
import { partitionTransactionalId } from "../../../src/transport/partition_transactions.ts";
import { TransactionalOutput } from "../../../src/transport/transactional.ts";
import {
  brokers,
  createTopics,
  groupLag,
  kafka,
  produce,
  uniqueNames,
  waitFor,
  withAdmin,
} from "../../helpers/kafka.ts";
import { event } from "../../helpers/events.ts";

Deno.test("exactly-once engine: a batch whose transaction failed is counted once, when it is processed again", async () => {
  const n = uniqueNames("eos-counts");
  const stateTopic = `${n.group}-state`;
  await createTopics([n.events, n.alerts, n.dlq], 1);
  await withAdmin((admin) =>
    admin.createTopics({
      topics: [{
        topic: stateTopic,
        numPartitions: 1,
        configEntries: [{ name: "cleanup.policy", value: "compact" }],
      }],
      waitForLeaders: true,
    })
  );
  const registry = new RuleRegistry("rules");
  await registry.reload();
  const logger = createLogger({ level: "error", sink: { write: () => {}, pretty: false } });
  const client = createKafka(kafkaSettingsFromEnv(brokers(), {}), logger, { retries: 5 });
  const eos = exactlyOnceEngine({
    kafka: client,
    logger,
    groupId: n.group,
    eventsTopic: n.events,
    stateTopic,
    output: new KafkaOutput(client),
    pipeline: (parts) =>
      new Pipeline({
        ruleSet: () => registry.ruleSet,
        topics: { alerts: n.alerts, dlq: n.dlq },
        logger,
        ...parts,
      }),
    source: (parts) =>
      new KafkaSource({
        kafka: client,
        groupId: n.group,
        topic: n.events,
        logger,
        sessionTimeoutMs: 6000,
        ...parts,
      }),
  });
  const events = (from: number) =>
    Array.from({ length: 10 }, (_, i) => {
      const e = event({ event_id: `eos-count-${from + i}`, sensor_id: `s-${from + i}`, value: 21 });
      return { key: `temperature:${e.sensor_id}`, value: JSON.stringify(e) };
    });
  try {
    await eos.start();
    await produce(n.events, events(0));
    await waitFor("the first 10 events", () => eos.pipeline.counters.events >= 10, 60_000);
    // Another producer takes the partition's transactional id over: the engine's next transaction
    // fails, its batch is read and processed again by a new producer.
    const fencer = new TransactionalOutput(kafka(), {
      transactionalId: partitionTransactionalId(n.group, n.events, 0),
      groupId: n.group,
      logger,
      onFailure: () => {},
    });
    // Connecting is what fences (InitProducerId); a send of its own could be fenced in turn by the
    // engine's next producer, which does not wait for the fencer to be done.
    await fencer.connect();
    await fencer.close();
    await produce(n.events, events(10));
    await waitFor("every event committed", async () => await groupLag(n.group, n.events) === 0, 90_000);
    assert.equal(eos.pipeline.counters.events, 20);
    assert.equal(eos.pipeline.counters.accepted, 20);
  } finally {
    await eos.stop();
  }
});
