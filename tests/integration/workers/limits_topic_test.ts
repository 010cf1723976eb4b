/**
 * LIMITS_TOPIC with engine workers: every worker follows the topic for its own rule set, but what is
 * wrong with the topic is the process's to say, once (it was said by each worker: WORKERS times).
 */
import assert from "node:assert/strict";
import { createCompactedTopic, produce, recreateTopic, uniqueNames, waitFor } from "../../helpers/kafka.ts";
import { startWorkers } from "./fixture.ts";

interface Line {
  level: string;
  msg: string;
  worker?: number;
}

Deno.test("WORKERS=2: the limits topic created again with a retention that deletes is said once by the process, not by each worker", async () => {
  const limits = `${uniqueNames("workers-limits").events}.limits`;
  await createCompactedTopic(limits, 1);
  await produce(limits, [{ key: "a", value: JSON.stringify({ fleet: { max: 30 } }) }]);
  const { service, cleanup } = await startWorkers("workers-limits", { LIMITS_TOPIC: limits });
  const lines = (): Line[] =>
    (service.stdout() + "\n" + service.stderr()).split("\n").flatMap((l) => {
      try {
        return [JSON.parse(l) as Line];
      } catch {
        return [];
      }
    });
  try {
    await service.waitForLine(/"msg":"Engine workers started"/, 90_000);
    // As tooling with the cluster's defaults makes it again: cleanup.policy=delete, 7 days.
    await recreateTopic(limits, 1);
    await produce(limits, [{ key: "b", value: JSON.stringify({ fleet: { max: 40 } }) }]);
    // Both workers have read the new topic (each says so, with what it removed): whatever they
    // would say of it has been said by then.
    const readAnew = (worker: number) =>
      lines().some((l) => l.worker === worker && /read anew/.test(l.msg) && /created again/.test(l.msg));
    await waitFor("both workers reading the new topic", () => readAnew(0) && readAnew(1), 60_000);
    const retention = () =>
      lines().filter((l) => l.level === "error" && /cleanup\.policy=delete/.test(l.msg));
    await waitFor("the error about its retention", () => retention().length > 0, 30_000);
    const recreated = lines().filter((l) => l.level === "error" && /deleted and created again/.test(l.msg));
    assert.equal(recreated.length, 1, JSON.stringify(recreated));
    // The main thread's: said whichever worker is restarting.
    assert.equal(recreated[0]!.worker, undefined, JSON.stringify(recreated));
    for (const worker of [0, 1]) {
      const read = lines().filter((l) => l.worker === worker && /read anew/.test(l.msg));
      assert.deepEqual(read.map((l) => l.level), ["info"], JSON.stringify(read));
    }
    assert.equal(retention().length, 1, JSON.stringify(retention()));
    assert.match(retention()[0]!.msg, /--add-config cleanup\.policy=compact/);
  } finally {
    await service.stop();
    await cleanup();
  }
});
