/**
 * Waiting for a broker: which answers are worth another attempt, how the problem is put to an
 * operator, and the wait loop against a real closed port on 127.0.0.1.
 */
import assert from "node:assert/strict";
import net from "node:net";
import kafkajs from "kafkajs";
import { createLogger } from "../../../src/log.ts";
import { Backoff } from "../../../src/transport/backoff.ts";
import { uniqueNames } from "../../helpers/kafka.ts";
import {
  createKafka,
  ensureTopics,
  isRetriable,
  kafkaProblem,
  kafkaSettingsFromEnv,
  TopicNotReadyError,
  untilKafka,
} from "../../../src/transport/kafka.ts";

// kafkajs adds these to its exports by spreading, which ES named imports do not see.
const {
  KafkaJSAggregateError,
  KafkaJSConnectionError,
  KafkaJSGroupCoordinatorNotFound,
  KafkaJSNonRetriableError,
  KafkaJSNumberOfRetriesExceeded,
  KafkaJSProtocolError,
} = kafkajs;

const protocolError = (type: string, code: number, retriable: boolean) =>
  new KafkaJSProtocolError(Object.assign(new Error(`${type} answer`), { type, code, retriable }));

Deno.test("isRetriable() retries what a starting broker answers and refuses what will not change", () => {
  const table: [string, unknown, boolean][] = [
    ["UNKNOWN_TOPIC_OR_PARTITION", protocolError("UNKNOWN_TOPIC_OR_PARTITION", 3, true), true],
    ["LEADER_NOT_AVAILABLE", protocolError("LEADER_NOT_AVAILABLE", 5, true), true],
    ["NOT_CONTROLLER", protocolError("NOT_CONTROLLER", 41, true), true],
    [
      "retries exhausted on a refused connection",
      new KafkaJSNumberOfRetriesExceeded(
        new KafkaJSConnectionError("Connection error: connect ECONNREFUSED"),
        {
          retryCount: 2,
          retryTime: 300,
        },
      ),
      true,
    ],
    ["a topic without a leader yet", new TopicNotReadyError("no leader"), true],
    // kafkajs's own, as non-retriable, when no broker it reached named the coordinator.
    [
      "no group coordinator found",
      // Typed without arguments, but its message is the first (as kafkajs's cluster throws it).
      new (KafkaJSGroupCoordinatorNotFound as unknown as new (m: string) => Error)(
        "Failed to find group coordinator",
      ),
      true,
    ],
    // What admin.createTopics throws (kafkajs bails out with it as it is) when a cluster is starting:
    // too few brokers registered yet.
    [
      "topics refused for a replication factor the brokers registered so far cannot reach",
      new KafkaJSAggregateError("Topic creation errors", [
        protocolError("INVALID_REPLICATION_FACTOR", 38, false),
        protocolError("INVALID_REPLICATION_FACTOR", 38, false),
      ]),
      true,
    ],
    [
      "topics refused, one of them for good",
      new KafkaJSAggregateError("Topic creation errors", [
        protocolError("INVALID_REPLICATION_FACTOR", 38, false),
        protocolError("TOPIC_AUTHORIZATION_FAILED", 29, false),
      ]),
      false,
    ],
    [
      "an authorization failure kafkajs gave up on",
      new KafkaJSNonRetriableError(protocolError("TOPIC_AUTHORIZATION_FAILED", 29, false)),
      false,
    ],
    ["a programming error", new TypeError("x is not a function"), false],
    ["not an error", "boom", false],
  ];
  for (const [name, error, expected] of table) assert.equal(isRetriable(error), expected, name);
});

Deno.test("kafkaProblem() says what failed in a few words", () => {
  const refused = new KafkaJSNumberOfRetriesExceeded(
    new KafkaJSConnectionError("Connection error: connect ECONNREFUSED 127.0.0.1:1"),
    { retryCount: 0, retryTime: 300 },
  );
  assert.equal(kafkaProblem(refused), "connection refused");
  assert.equal(kafkaProblem(new KafkaJSConnectionError("Connection timeout")), "connection timed out");
  assert.equal(
    kafkaProblem(
      new KafkaJSAggregateError("Topic creation errors", [
        protocolError("INVALID_REPLICATION_FACTOR", 38, false),
        protocolError("INVALID_REPLICATION_FACTOR", 38, false),
      ]),
    ),
    "INVALID_REPLICATION_FACTOR answer",
    "the aggregate's errors, each once",
  );
  assert.equal(
    kafkaProblem(new KafkaJSNonRetriableError(protocolError("INVALID_PRODUCER_EPOCH", 47, false))),
    "fenced by the partition's next owner",
  );
  assert.equal(
    kafkaProblem(protocolError("UNKNOWN_TOPIC_OR_PARTITION", 3, true)),
    "UNKNOWN_TOPIC_OR_PARTITION answer",
  );
});

Deno.test("untilKafka() waits for a broker that is not there, one warning per attempt, until told to stop", async () => {
  // A port nobody listens on: bound, then closed.
  const port = await new Promise<number>((resolve) => {
    const server = net.createServer().listen(0, "127.0.0.1", () => {
      const p = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(p));
    });
  });
  const lines: string[] = [];
  const logger = createLogger({ level: "debug", sink: { write: (l) => lines.push(l), pretty: false } });
  const brokers = [`127.0.0.1:${port}`];
  const kafka = createKafka(kafkaSettingsFromEnv(brokers, {}), logger, { retries: 0 });
  const reasons: (string | null)[] = [];
  const giveUp = new AbortController();
  let attempts = 0;
  await assert.rejects(
    untilKafka(async () => {
      attempts++;
      const admin = kafka.admin();
      try {
        await admin.connect();
      } finally {
        await admin.disconnect();
      }
    }, {
      brokers,
      logger,
      backoff: new Backoff({ initialMs: 1, maxMs: 1 }),
      signal: giveUp.signal,
      onWaiting: (reason) => {
        reasons.push(reason);
        if (reasons.length === 3) giveUp.abort();
      },
    }),
    (err: Error) => err.name === "AbortError",
  );
  assert.equal(attempts, 3);
  assert.deepEqual(reasons, Array(3).fill(`waiting for Kafka at 127.0.0.1:${port}: connection refused`));
  const warnings = lines.map((l) => JSON.parse(l)).filter((l) => l.level !== "debug");
  assert.deepEqual(warnings.map((w) => [w.msg, w.problem, w.attempt]), [
    ["Waiting for Kafka", "connection refused", 1],
    ["Waiting for Kafka", "connection refused", 2],
    ["Waiting for Kafka", "connection refused", 3],
  ]);
  assert.ok(lines.every((l) => !l.includes('"stack"')), "no stack in any line");
});

Deno.test("untilKafka() throws an error that waiting cannot fix at once", async () => {
  const logger = createLogger({ level: "error", sink: { write: () => {}, pretty: false } });
  let attempts = 0;
  await assert.rejects(
    untilKafka(() => {
      attempts++;
      return Promise.reject(
        new KafkaJSNonRetriableError(protocolError("SASL_AUTHENTICATION_FAILED", 58, false)),
      );
    }, { brokers: ["127.0.0.1:9092"], logger }),
    /SASL_AUTHENTICATION_FAILED/,
  );
  assert.equal(attempts, 1);
});

Deno.test("untilKafka() waits a while for brokers to register, but gives up on a replication factor the cluster never reaches, saying so", async () => {
  // The broker of the tests is one broker: a replication factor of 3 is never reached (as with a
  // broker's default.replication.factor above the brokers it has).
  const brokers = (Deno.env.get("KAFKA_BROKERS") ?? "127.0.0.1:9092").split(",");
  const lines: string[] = [];
  const logger = createLogger({ level: "warn", sink: { write: (l) => lines.push(l), pretty: false } });
  const kafka = createKafka(kafkaSettingsFromEnv(brokers, {}), logger, { retries: 0 });
  const topic = `${uniqueNames("rf-unreachable").events}`;
  const admin = kafka.admin();
  await admin.connect();
  const giveUp = new AbortController();
  const guard = setTimeout(() => giveUp.abort(), 10_000);
  try {
    const started = Date.now();
    await assert.rejects(
      untilKafka(() => ensureTopics(admin, [{ topic, numPartitions: 1, replicationFactor: 3 }]), {
        brokers,
        logger,
        backoff: new Backoff({ initialMs: 100, maxMs: 100 }),
        signal: giveUp.signal,
        registeringMs: 1_000,
      }),
      (err: Error) => {
        assert.notEqual(err.name, "AbortError", "still waiting after 10 s");
        assert.match(err.message, /INVALID_REPLICATION_FACTOR|replication factor/);
        return true;
      },
    );
    const took = Date.now() - started;
    assert.ok(took >= 1_000, `waited ${took} ms, not the time brokers take to register`);
    assert.ok(lines.some((l) => l.includes("Waiting for Kafka")), "it waited first");
  } finally {
    clearTimeout(guard);
    await admin.disconnect();
  }
});
