/**
 * `GET /api/alerts` needs no token, and at 10,000 open alerts each answer cost ~118 ms of the main
 * thread: requests close together share one answer, but never across a change the user can cause or
 * see (an acknowledgement, a silence, a notification status, a new or resolved alert, a reload), nor
 * across filters.
 */
import assert from "node:assert/strict";
import type { SensorAlert } from "../../src/contract/schemas.ts";
import type { OpenEpisode } from "../../src/engine/types.ts";
import { LiveFeed } from "../../src/http/live.ts";
import { parseRuleFile } from "../../src/rules/load.ts";
import { fakeService } from "../helpers/fake_service.ts";
import { testHttpServer } from "../helpers/http.ts";
import { alert, capturing, dispatcher } from "../helpers/notifiers.ts";
import { fileSilences, silenceOn } from "../helpers/silences.ts";

const { inhibitions } = parseRuleFile(
  "rules/noise.yaml",
  `inhibit:
  - source: { rule_id: gateway-down }
    target: { rule_id: co2-critical }
    equal: [location]
`,
);

interface Shown {
  alert_id: string;
  priority: string;
  acknowledged: boolean;
  flapping?: boolean;
  silenced_by: string[];
  inhibited_by: { alert_id: string } | null;
}

Deno.test("/api/alerts is shared by requests close together, and fresh after every change", async (t) => {
  const live = new LiveFeed();
  const { inst } = capturing("n", "scripted");
  const d = dispatcher([inst], { inhibitions: () => inhibitions });
  const { silences } = await fileSilences({ prefix: "alerts-share-" });
  // The open episodes, replaced as the tracker does: an alert that changes is a new object.
  const episodes = new Map<string, OpenEpisode>();
  const open = (a: SensorAlert) =>
    episodes.set(a.alert_id, {
      alert_id: a.alert_id,
      rule_id: a.rule_id,
      acknowledged: a.acknowledged,
      alert: a,
    });
  for (let i = 0; i < 20; i++) {
    open(alert({ alert_id: `a-${i}`, sensor_id: `co2-${i}`, priority: i % 2 === 0 ? "critical" : "high" }));
  }
  let counted = 0;
  const silencing = silences.silencing.bind(silences);
  silences.silencing = (a) => {
    counted++;
    return silencing(a);
  };
  const registry = {
    ruleSet: { rules: [] },
    dir: "rules",
    lastGoodReload: new Date(),
    reloadErrors: 0,
    status: () => [],
    problems: () => [],
  };
  const service = fakeService({
    pipeline: { tracker: { active: () => [...episodes.values()], flapping: () => [], size: 0 } },
    over: { dispatcher: d, registry, silences },
  });
  const http = await testHttpServer({ live, mode: "embedded" });
  http.attach(service);
  const get = async (query = ""): Promise<{ active: Shown[]; recent: Shown[] }> => {
    const res = await fetch(`${http.url}/api/alerts${query}`);
    assert.equal(res.status, 200);
    return await res.json();
  };
  const find = async (id: string) => (await get()).active.find((a) => a.alert_id === id);
  try {
    await t.step("requests close together share one answer", async () => {
      const first = await get();
      const builds = counted;
      const second = await get();
      assert.deepEqual(second, first);
      assert.equal(
        counted,
        builds,
        `the second request built the answer again (${counted - builds} alerts viewed)`,
      );
    });

    await t.step("a new alert is in the next answer", async () => {
      await get();
      const a = alert({ alert_id: "new-1", sensor_id: "co2-new" });
      open(a);
      live.onAlert(a);
      assert.ok(await find("new-1"));
    });

    await t.step("an alert whose episode changed without a notice (flapping) shows it", async () => {
      await get();
      const ep = episodes.get("a-0")!;
      open({ ...ep.alert!, flapping: true });
      assert.equal((await find("a-0"))?.flapping, true);
    });

    await t.step("an acknowledgement is in the next answer", async () => {
      assert.equal((await find("a-1"))?.acknowledged, false);
      const acked = {
        ...episodes.get("a-1")!.alert!,
        acknowledged: true,
        acknowledged_by: "me",
      } as SensorAlert;
      open(acked);
      live.acknowledged(acked);
      const after = await get();
      assert.equal(after.active.find((a) => a.alert_id === "a-1")?.acknowledged, true);
      assert.equal(after.recent[0]?.alert_id, "a-1");
    });

    await t.step("a silence created, then expired, is in the next answer", async () => {
      assert.deepEqual((await find("a-2"))?.silenced_by, []);
      const s = await silences.create(silenceOn("sensor_id", "co2-2"));
      assert.deepEqual((await find("a-2"))?.silenced_by, [s.id]);
      await silences.expire(s.id);
      assert.deepEqual((await find("a-2"))?.silenced_by, []);
    });

    await t.step("a silence that starts by itself is in the next answer", async () => {
      const startsAt = Date.now() + 300;
      const s = await silences.create({
        ...silenceOn("sensor_id", "co2-4"),
        starts_at: new Date(startsAt).toISOString(),
      });
      assert.deepEqual((await find("a-4"))?.silenced_by, []);
      while (Date.now() <= startsAt) await new Promise((r) => setTimeout(r, 20));
      assert.deepEqual((await find("a-4"))?.silenced_by, [s.id]);
    });

    await t.step(
      "a change of notification status (an inhibiting alert fires) is in the next answer",
      async () => {
        assert.equal((await find("a-3"))?.inhibited_by, null);
        const source = alert({ alert_id: "gw-1", rule_id: "gateway-down", sensor_id: "gw-1" });
        d.observeFiring(source);
        assert.equal((await find("a-3"))?.inhibited_by?.alert_id, "gw-1");
      },
    );

    await t.step("a resolved alert leaves the next answer", async () => {
      assert.ok(await find("a-5"));
      const resolved = { ...episodes.get("a-5")!.alert!, state: "resolved" } as SensorAlert;
      episodes.delete("a-5");
      live.onAlert(resolved);
      assert.equal(await find("a-5"), undefined);
    });

    await t.step("a reload gives a fresh answer", async () => {
      await get();
      const builds = counted;
      registry.ruleSet = { rules: [] };
      await get();
      assert.ok(counted > builds, "the answer after a reload was built again");
    });

    await t.step("each filter gets its own answer", async () => {
      const all = await get();
      const critical = await get("?priority=critical");
      const high = await get("?priority=high");
      assert.ok(critical.active.length > 0 && high.active.length > 0);
      assert.ok(critical.active.every((a) => a.priority === "critical"));
      assert.ok(high.active.every((a) => a.priority === "high"));
      assert.equal(critical.active.length + high.active.length, all.active.length);
      assert.equal((await get("?state=acknowledged")).active.length, 1);
    });
  } finally {
    await http.close();
    await d.close();
    await silences.close();
  }
});
