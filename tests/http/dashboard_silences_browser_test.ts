/**
 * The dashboard's silence flow in Debian's Chromium, headless, driven by playwright-core: Silence on
 * an alert opens the form prefilled with its sensor and rule, the new silence is listed in the panel
 * and the alert shows silenced; Expire ends it.
 */
import assert from "node:assert/strict";
import { waitFor } from "../helpers/kafka.ts";
import { httpUrl, startService } from "../helpers/service.ts";
import { launchChromium, pageErrors } from "../helpers/chromium.ts";

Deno.test("the dashboard silences an alert from its Silence action, lists the silence and expires it", async () => {
  await Deno.mkdir("tests/artifacts", { recursive: true });
  const dir = await Deno.makeTempDir({ dir: "tests/artifacts", prefix: "silences-browser-" });
  const profile = await Deno.makeTempDir({ prefix: "chromium-profile-" });
  const context = await launchChromium(profile, { width: 1280, height: 900 });
  // Embedded, every event out of range: alerts stay open.
  const service = startService({ KAFKA_BROKERS: "", SILENCES_FILE: `${dir}/silences.json` }, [
    "--rate",
    "20",
    "--anomaly",
    "1",
    "--seed",
    "3",
  ]);
  try {
    const base = await httpUrl(service);
    const page = context.pages()[0] ?? await context.newPage();
    const errors = pageErrors(page);
    await page.goto(base);

    const row = page.locator(".alert:has(.prio.high):has(button.silence)").first();
    await row.waitFor({ timeout: 20_000 });
    const alertId = await row.getAttribute("data-alert-id");
    assert.ok(alertId);
    const { active } = await (await fetch(`${base}/api/alerts`)).json();
    const alert = active.find((a: { alert_id: string }) => a.alert_id === alertId);
    assert.deepEqual(alert.silenced_by, []);

    await row.locator("button.silence").click();
    assert.equal(await page.locator("#silence-sensor").inputValue(), alert.sensor_id);
    assert.equal(await page.locator("#silence-rule").inputValue(), alert.rule_id);
    await page.locator("#silence-by").fill("browser-test");
    await page.locator("#silence-comment").fill("sensor under maintenance");
    await page.locator("#silence-submit").click();

    const listed = page.locator("#silences .silence-row");
    await listed.first().waitFor({ timeout: 20_000 });
    assert.equal(await listed.count(), 1);
    assert.match(await listed.textContent() ?? "", new RegExp(`sensor_id="${alert.sensor_id}"`));
    assert.match(await listed.textContent() ?? "", /browser-test: sensor under maintenance/);
    const silenced = page.locator(`.alert.silenced[data-alert-id="${alertId}"]`);
    await silenced.waitFor({ timeout: 20_000 });
    assert.match(await silenced.textContent() ?? "", /silenced by/);
    const { silences } = await (await fetch(`${base}/api/silences`)).json();
    assert.equal(silences.length, 1);
    assert.deepEqual(
      silences[0].matchers.map((m: { name: string; value: string }) => `${m.name}=${m.value}`),
      [
        `sensor_id=${alert.sensor_id}`,
        `rule_id=${alert.rule_id}`,
      ],
    );
    await page.screenshot({ path: "tests/artifacts/dashboard-silences.png", fullPage: true });

    await listed.locator("button.expire").click();
    await page.locator("#silences p.muted").waitFor({ timeout: 20_000 });
    await waitFor(
      "the alert to show unsilenced",
      async () => await page.locator(`.alert.silenced[data-alert-id="${alertId}"]`).count() === 0,
      20_000,
    );
    assert.deepEqual(errors, [], "no script errors on the page");
  } finally {
    await context.close();
    const status = await service.stop();
    assert.equal(status.code, 0, service.stderr().slice(-2000));
    await Deno.remove(profile, { recursive: true }).catch(() => {});
  }
});
