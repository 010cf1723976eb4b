/**
 * Hostile text in a silence (its matchers, who made it, why) on the dashboard, in Debian's Chromium,
 * headless: it shows as text, no element is made of it and no script runs.
 */
import assert from "node:assert/strict";
import { waitFor } from "../helpers/kafka.ts";
import { httpUrl, startService } from "../helpers/service.ts";
import { launchChromium } from "../helpers/chromium.ts";

const IMG = `<img src=x onerror="document.title='pwned'">`;
const SCRIPT = `</span><script>document.title='pwned'</script>`;

Deno.test("the dashboard shows a silence's hostile matcher, author and comment as text, and runs none of it", async () => {
  await Deno.mkdir("tests/artifacts", { recursive: true });
  const dir = await Deno.makeTempDir({ dir: "tests/artifacts", prefix: "silences-hostile-browser-" });
  const profile = await Deno.makeTempDir({ prefix: "chromium-profile-" });
  const context = await launchChromium(profile);
  const service = startService({ KAFKA_BROKERS: "", SILENCES_FILE: `${dir}/silences.json` }, [
    "--rate",
    "5",
    "--seed",
    "3",
  ]);
  try {
    const base = await httpUrl(service);
    await waitFor("the service to answer", async () => (await fetch(`${base}/api/silences`)).status === 200);
    const created = await fetch(`${base}/api/silences`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        matchers: [{ name: "sensor_id", value: IMG }, { name: "labels.x", value: `a"b`, is_equal: false }],
        ends_at: new Date(Date.now() + 3600_000).toISOString(),
        created_by: `${SCRIPT}\u001b[31m`,
        comment: IMG,
      }),
    });
    assert.equal(created.status, 201, await created.text());
    const page = context.pages()[0] ?? await context.newPage();
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    await page.goto(base);
    const row = page.locator("#silences .silence-row");
    await row.first().waitFor({ timeout: 20_000 });
    const text = await row.first().textContent() ?? "";
    assert.ok(text.includes(`sensor_id="${IMG}"`), text);
    assert.ok(text.includes(`${SCRIPT}\u001b[31m: ${IMG}`), text);
    assert.equal(await page.locator("#silences img, #silences script").count(), 0);
    assert.notEqual(await page.title(), "pwned");
    assert.deepEqual(errors, [], "no script errors on the page");
  } finally {
    await context.close();
    const status = await service.stop();
    assert.equal(status.code, 0, service.stderr().slice(-2000));
    await Deno.remove(profile, { recursive: true }).catch(() => {});
  }
});
