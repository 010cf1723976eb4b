/**
 * Rule-file refusals as an operator sees them on a running service (embedded mode, no broker): the
 * rules directory is a Kubernetes ConfigMap-style mount, updated by swapping its `..data` symlink.
 */
import assert from "node:assert/strict";
import { waitFor } from "../helpers/kafka.ts";
import { scrape } from "../helpers/metrics.ts";
import { httpUrl, startService } from "../helpers/service.ts";

interface RulesBody {
  ok: boolean;
  loaded: number;
  stale: string[];
  errors: { location: string; rule_id: string | null; message: string; text: string }[];
  rules: { id: string; enabled: boolean; source: string }[];
}

Deno.test("/api/rules says ok:false with file:line when a new file reuses a rule id, and the rule in force stays", async () => {
  await Deno.mkdir("tests/artifacts", { recursive: true });
  const dir = await Deno.makeTempDir({ dir: "tests/artifacts", prefix: "rules-configmap-" });
  const shipped = await Deno.readTextFile("rules/default.yaml");
  // What the kubelet does on each ConfigMap update: a new timestamped directory, `..data` swapped to it.
  const publish = async (version: number, files: Record<string, string>, old?: number) => {
    await Deno.mkdir(`${dir}/..v${version}`);
    for (const [name, text] of Object.entries(files)) {
      await Deno.writeTextFile(`${dir}/..v${version}/${name}`, text);
    }
    await Deno.symlink(`..v${version}`, `${dir}/..data_tmp`);
    await Deno.rename(`${dir}/..data_tmp`, `${dir}/..data`);
    for (const name of Object.keys(files)) {
      await Deno.symlink(`..data/${name}`, `${dir}/${name}`).catch(() => {});
    }
    if (old !== undefined) await Deno.remove(`${dir}/..v${old}`, { recursive: true });
  };
  await publish(1, { "default.yaml": shipped });
  const service = startService({ KAFKA_BROKERS: "", RULES_DIR: dir }, ["--rate", "5", "--seed", "3"]);
  try {
    const base = await httpUrl(service);
    const rules = async () => (await (await fetch(`${base}/api/rules`)).json()) as RulesBody;
    const before = await waitFor("the service to start", async () => {
      const body = await rules();
      return body.ok !== undefined && body;
    });
    assert.equal(before.ok, true, JSON.stringify(before.errors));
    assert.equal(before.loaded, 4);

    // A new file that sorts first and would disable co2-critical.
    const override = "rules:\n  - id: co2-critical\n    sensor_type: co2\n    threshold: { max: 1000 }\n" +
      "    priority: low\n    enabled: false\n";
    await publish(2, { "default.yaml": shipped, "00-override.yaml": override }, 1);
    const after = await waitFor("the reload that refuses the override", async () => {
      const body = await rules();
      return body.ok === false && body;
    });
    assert.deepEqual(after.stale, [`${dir}/00-override.yaml`]);
    assert.equal(after.errors.length, 1);
    const [error] = after.errors;
    assert.equal(error!.location, `${dir}/00-override.yaml:2:5`);
    assert.equal(error!.rule_id, "co2-critical");
    assert.match(error!.message, new RegExp(`already defined at ${dir}/default\\.yaml:\\d+`));
    const co2 = after.rules.find((r) => r.id === "co2-critical")!;
    assert.equal(co2.enabled, true);
    assert.match(co2.source, new RegExp(`^${dir}/default\\.yaml:\\d+$`));
    assert.equal(after.loaded, 4);

    const m = await scrape(base);
    assert.equal(m.value("sensor_rule_files_stale"), 1);
    assert.equal(m.value("sensor_rule_problems"), 1);
    await service.waitForLine(
      new RegExp(`Rule problem: ${dir}/00-override\\.yaml:2:5 co2-critical: Duplicate`),
    );

    // The override removed in the next version: the problem goes, the shipped rule is still there.
    await Deno.remove(`${dir}/00-override.yaml`);
    await publish(3, { "default.yaml": shipped }, 2);
    const fixed = await waitFor("the reload without the override", async () => {
      const body = await rules();
      return body.ok === true && body;
    });
    assert.equal(fixed.loaded, 4);
    assert.equal((await scrape(base)).value("sensor_rule_files_stale"), 0);
  } finally {
    const status = await service.stop();
    await Deno.remove(dir, { recursive: true });
    assert.equal(status.code, 0, service.stderr().slice(-2000));
  }
});
