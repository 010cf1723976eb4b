/**
 * The dashboard in Debian's Chromium, headless, driven by playwright-core: the page an operator
 * opens after `deno task start`. `deno task test` finds or installs Chromium and sets CHROMIUM_PATH.
 */
import assert from "node:assert/strict";
import { waitFor } from "../helpers/kafka.ts";
import { httpUrl, startService } from "../helpers/service.ts";
import { onStandIn, standIn, streamedAlert, streamResponse } from "../helpers/dashboard.ts";
import { launchChromium, pageErrors } from "../helpers/chromium.ts";

/**
 * playwright-core probes for WSL when its bundle loads, reading /proc/sys/fs/binfmt_misc, which Deno
 * grants only under --allow-all; the test task names its permissions. The probe only serves opening
 * URLs in a desktop browser, never launching one, and `__IS_WSL_TEST__` defers it.
 */

Deno.test("the dashboard shows live sensor values and alerts, and Ack acknowledges an alert", async () => {
  await Deno.mkdir("tests/artifacts", { recursive: true });
  const profile = await Deno.makeTempDir({ prefix: "chromium-profile-" });
  const context = await launchChromium(profile, { width: 1280, height: 800 });
  // The embedded default (no broker, even when the test run has one); every event out of range,
  // so alerts stay open until acknowledged.
  const service = startService({ KAFKA_BROKERS: "" }, ["--rate", "20", "--anomaly", "1", "--seed", "3"]);
  try {
    const base = await httpUrl(service);
    const page = context.pages()[0] ?? await context.newPage();
    const errors = pageErrors(page);
    await page.goto(base);

    const value = page.locator('[data-sensor="temp-001"] .value');
    await value.waitFor({ timeout: 20_000 });
    const first = await value.textContent();
    await waitFor("the temp-001 value to change", async () => (await value.textContent()) !== first, 20_000);
    assert.equal(await page.locator('[data-sensor="temp-001"] svg polyline').count(), 1, "a sparkline");
    assert.equal(await page.locator('[data-sensor="temp-001"] svg rect').count(), 1, "the threshold band");
    assert.equal(await page.locator('[data-sensor="temp-001"]').getAttribute("data-state"), "high");

    const alert = page.locator(".alert:has(.prio.high):has(button.ack)").first();
    await alert.waitFor({ timeout: 20_000 });
    const alertId = await alert.getAttribute("data-alert-id");
    assert.ok(alertId);
    await alert.locator("button.ack").click();
    const acknowledged = page.locator(`.alert.acknowledged[data-alert-id="${alertId}"]`);
    await acknowledged.waitFor({ timeout: 20_000 });
    assert.match(await acknowledged.textContent() ?? "", /acknowledged/);

    const api = await (await fetch(`${base}/api/alerts?state=acknowledged`)).json();
    assert.deepEqual(api.active.map((a: { alert_id: string }) => a.alert_id), [alertId]);
    assert.equal(await page.locator("#ready").textContent(), "ready");
    await page.screenshot({ path: "tests/artifacts/dashboard.png", fullPage: true });
    assert.deepEqual(errors, [], "no script errors on the page");
  } finally {
    await context.close();
    const status = await service.stop();
    assert.equal(status.code, 0, service.stderr().slice(-2000));
    await Deno.remove(profile, { recursive: true }).catch(() => {});
  }
});

Deno.test("the dashboard opened while the service starts (stream answers 503) connects once it is up", async () => {
  const sensor = {
    sensor_id: "temp-001",
    sensor_type: "temperature",
    unit: "°C",
    location: null,
    count: 1,
    avg: 21.5,
    min: 21.5,
    max: 21.5,
    last_value: 21.5,
    last_update: new Date().toISOString(),
    recent: [21.5],
    threshold: null,
    state: "ok",
  };
  let streams = 0;
  // The server's answer while no service is attached, then a stream as the started service sends it.
  const server = standIn((path) => {
    if (path !== "/api/stream") return null;
    if (++streams === 1) return Response.json({ error: "Service is starting" }, { status: 503 });
    return streamResponse(["sensors", [sensor]]);
  });
  await onStandIn(server, async (tab) => {
    await tab.locator('[data-sensor="temp-001"] .value').waitFor({ timeout: 20_000 });
    assert.ok(streams >= 2, `the stream was opened ${streams} time(s)`);
  });
});

Deno.test("the dashboard marks a flapping alert and an escalated one", async () => {
  const alerts = [
    streamedAlert("flappy", { flapping: true }),
    streamedAlert("escalated", { priority: "critical", escalation: 2 }),
    streamedAlert("plain", { escalation: 0 }),
  ];
  const server = standIn((path) => path === "/api/stream" ? streamResponse(["alerts", { alerts }]) : null);
  await onStandIn(server, async (tab, errors) => {
    await tab.locator('[data-alert-id="plain"]').waitFor({ timeout: 20_000 });
    assert.equal(await tab.locator('[data-alert-id="flappy"] .noise').textContent(), "flapping");
    assert.equal(await tab.locator('[data-alert-id="escalated"] .noise').textContent(), "escalated ×2");
    assert.equal(await tab.locator('[data-alert-id="plain"] .noise').count(), 0);
    assert.deepEqual(errors, []);
  });
});
