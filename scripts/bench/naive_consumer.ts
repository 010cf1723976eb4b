/**
 * The obvious design, as a yardstick: `eachMessage`, `JSON.parse`, every rule's JSON-Logic through
 * json-logic-js on every event, and one awaited produce per alert. No index, no batching, no state
 * (window and deadman rules have no JSON-Logic form and are left out, which only flatters it).
 *
 * Usage: naive_consumer.ts BROKERS TOPIC GROUP ALERTS_TOPIC RULES_DIR
 *
 * @module
 */
import { Kafka, logLevel, Partitioners } from "kafkajs";
import jsonLogic from "json-logic-js";
import { RuleRegistry } from "../../src/rules/registry.ts";
import type { CompiledRule } from "../../src/rules/compile.ts";

type Logic = Parameters<typeof jsonLogic.apply>[0];

/** A rule's selectors and condition as one JSON-Logic expression. */
export function naiveLogic(r: CompiledRule): Logic | null {
  if (r.kind !== "event" || r.logic === null) return null;
  const parts: unknown[] = [];
  const rule = r.rule;
  const list = <T>(v: T | T[] | undefined): T[] => v === undefined ? [] : Array.isArray(v) ? v : [v];
  const types = list(rule.sensor_type);
  if (types.length > 0) parts.push({ "in": [{ "var": "sensor_type" }, types] });
  const ids = list(rule.sensor_id);
  if (ids.length > 0) {
    parts.push({
      "or": ids.map((id) =>
        id.endsWith("*") && id.indexOf("*") === id.length - 1
          ? { "==": [{ "substr": [{ "var": "sensor_id" }, 0, id.length - 1] }, id.slice(0, -1)] }
          : { "==": [{ "var": "sensor_id" }, id] }
      ),
    });
  }
  if (rule.match !== undefined) parts.push(rule.match);
  parts.push(r.logic);
  return { "and": parts } as Logic;
}

if (import.meta.main) {
  const [brokers, topic, groupId, alertsTopic, rulesDir] = Deno.args;
  if (rulesDir === undefined) {
    throw new TypeError("Usage: naive_consumer.ts BROKERS TOPIC GROUP ALERTS_TOPIC RULES_DIR");
  }
  const registry = new RuleRegistry(rulesDir);
  await registry.reload();
  const rules = registry.ruleSet.rules.flatMap((r) => {
    const logic = naiveLogic(r);
    return logic === null ? [] : [{ id: r.rule.id, logic }];
  });
  const kafka = new Kafka({ clientId: "naive", brokers: brokers!.split(","), logLevel: logLevel.NOTHING });
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  const consumer = kafka.consumer({ groupId: groupId! });
  await producer.connect();
  await consumer.connect();
  await consumer.subscribe({ topics: [topic!], fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ message }) => {
      const event = JSON.parse(message.value!.toString());
      for (const rule of rules) {
        if (jsonLogic.truthy(jsonLogic.apply(rule.logic, event))) {
          await producer.send({
            topic: alertsTopic!,
            messages: [{
              key: message.key,
              value: JSON.stringify({
                rule_id: rule.id,
                sensor_id: event.sensor_id,
                value: event.value,
                event,
              }),
            }],
          });
        }
      }
    },
  });
  const stop = async () => {
    await consumer.disconnect();
    await producer.disconnect();
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGTERM", stop);
  Deno.addSignalListener("SIGINT", stop);
}
