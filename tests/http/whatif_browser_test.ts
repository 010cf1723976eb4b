/**
 * The dashboard's "What if" form in Debian's Chromium, headless (playwright-core): the YAML text of one
 * rule, run over the service's recent events, and its episodes shown.
 */
import assert from "node:assert/strict";
import { waitFor } from "../helpers/kafka.ts";
import { httpUrl, startService } from "../helpers/service.ts";
import { launchChromium } from "../helpers/chromium.ts";

Deno.test("the dashboard's What if form runs a rule over recent events and lists its episodes", async () => {
  const profile = await Deno.makeTempDir({ prefix: "chromium-profile-" });
  const context = await launchChromium(profile, { width: 1280, height: 900 });
  // Every event out of range: both temperature sensors have one episode, open from their first event.
  const service = startService({ KAFKA_BROKERS: "" }, ["--rate", "30", "--anomaly", "1", "--seed", "5"]);
  try {
    const base = await httpUrl(service);
    await waitFor("both temperature sensors alerting", async () => {
      const body = await (await fetch(`${base}/api/alerts`)).json();
      return (body.active ?? []).filter((a: { sensor_type: string }) => a.sensor_type === "temperature")
        .length === 2;
    });
    const page = context.pages()[0] ?? await context.newPage();
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    page.on("console", (m) => {
      if (m.type() === "error") errors.push(m.text());
    });
    await page.goto(base);
    await page.locator("#whatif-rule").fill(
      "id: what-if-temperature\nsensor_type: temperature\nthreshold: { min: 10, max: 35 }\npriority: high\n",
    );
    await page.locator("#whatif-run").click();
    await page.locator("#whatif-summary").waitFor({ timeout: 20_000 });
    assert.match(
      await page.locator("#whatif-summary").textContent() ?? "",
      /: 2 episodes, 2 firing, 0 repeats/,
    );
    assert.deepEqual(
      (await page.locator(".whatif-episode td:first-child").allTextContents()).sort(),
      ["temp-001", "temp-002"],
    );
    // A rule with a problem: the message, located in the text.
    await page.locator("#whatif-rule").fill(
      "id: x\nsensor_type: temperature\nthreshold: { max: 1 }\npriority: urgent\n",
    );
    await page.locator("#whatif-run").click();
    await page.locator("#whatif-result .problem").waitFor({ timeout: 20_000 });
    assert.match(await page.locator("#whatif-result .problem").textContent() ?? "", /what-if\.yaml:4:11 x: /);
    // The failed request's 400 is reported on the console; nothing else may be.
    assert.deepEqual(errors.filter((e) => !/status of 400/.test(e)), []);
  } finally {
    await service.stop();
    await context.close();
    await Deno.remove(profile, { recursive: true }).catch(() => {});
  }
});
