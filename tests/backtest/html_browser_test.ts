/**
 * The backtest's HTML page in Debian's Chromium, headless (playwright-core): it renders from the file
 * alone, asks the network for nothing, and draws one bar per episode.
 */
import assert from "node:assert/strict";
import { ndjson, recording, runBacktest, shippedRulesDir } from "./_recording.ts";
import { launchChromium } from "../helpers/chromium.ts";

Deno.test("the backtest's HTML page renders offline with one timeline bar per episode and the threshold band", async () => {
  const rules = await shippedRulesDir();
  const out = await Deno.makeTempDir({ prefix: "backtest-html-" });
  const profile = await Deno.makeTempDir({ prefix: "chromium-profile-" });
  const context = await launchChromium(profile, { width: 1280, height: 900 });
  try {
    const html = `${out}/report.html`;
    const run = await runBacktest(["--input", "-", "--json", "--html", html, "--rules", rules], {
      stdin: ndjson(recording(Date.UTC(2026, 0, 1))),
    });
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const report = JSON.parse(run.stdout) as {
      episodes: { rule_id: string; group: string }[];
      rules: { rule_id: string; episodes: number }[];
    };
    // The recording's episodes: 2 temperature, 2 repeating, 1 window, 2 silences, the sentinel.
    assert.equal(report.episodes.length, 8);

    const page = context.pages()[0] ?? await context.newPage();
    const requests: string[] = [];
    const errors: string[] = [];
    page.on("request", (r) => requests.push(r.url()));
    page.on("pageerror", (e) => errors.push(e.message));
    await page.goto(`file://${html}`);
    await page.locator("h1").waitFor({ timeout: 20_000 });

    assert.equal(await page.locator("rect.episode").count(), 8);
    for (const r of report.rules) {
      assert.equal(
        await page.locator(`section[data-rule="${r.rule_id}"] rect.episode`).count(),
        r.episodes,
        r.rule_id,
      );
    }
    const temp1 = page.locator('section[data-rule="temperature-out-of-range"] .row').filter({
      hasText: "temp-1",
    });
    assert.equal(await temp1.locator("rect.episode").count(), 2);
    assert.equal(await temp1.locator("svg.chart polyline.values").count(), 1, "the sensor's values");
    assert.equal(await temp1.locator("svg.chart rect.band").count(), 1, "the threshold band");
    const box = await temp1.locator("rect.episode").first().boundingBox();
    assert.ok(box !== null && box.width > 0 && box.height > 0, "the bar is drawn");
    assert.deepEqual(requests.filter((u) => !u.startsWith("file://")), [], "no network");
    assert.deepEqual(errors, []);
    await Deno.mkdir("tests/artifacts", { recursive: true });
    await page.screenshot({ path: "tests/artifacts/backtest-page.png", fullPage: true });

    // --against: A's bars and B's in their own lanes, and the difference table.
    const b = `${out}/b`;
    await Deno.mkdir(b);
    for await (const e of Deno.readDir(rules)) await Deno.copyFile(`${rules}/${e.name}`, `${b}/${e.name}`);
    const def = await Deno.readTextFile(`${b}/default.yaml`);
    await Deno.writeTextFile(`${b}/default.yaml`, def.replace("min: 10, max: 35", "min: 10, max: 37"));
    const both = `${out}/against.html`;
    const run2 = await runBacktest([
      "--input",
      "-",
      "--json",
      "--html",
      both,
      "--rules",
      rules,
      "--against",
      b,
    ], {
      stdin: ndjson(recording(Date.UTC(2026, 0, 1))),
    });
    assert.equal(run2.code, 0, run2.stdout + run2.stderr);
    const r2 = JSON.parse(run2.stdout) as { episodes: unknown[]; against: { episodes: unknown[] } };
    await page.goto(`file://${both}`);
    await page.locator("h1").waitFor({ timeout: 20_000 });
    assert.equal(await page.locator("rect.episode.a").count(), r2.episodes.length);
    assert.equal(await page.locator("rect.episode.b").count(), r2.against.episodes.length);
    const row = page.locator("table.diff tr").filter({ hasText: "temperature-out-of-range" });
    assert.deepEqual(await row.locator("td").allTextContents(), [
      "temperature-out-of-range",
      "2",
      "2",
      "1",
      "1",
      "1",
      "0",
    ]);
    assert.deepEqual(requests.filter((u) => !u.startsWith("file://")), [], "no network");
  } finally {
    await context.close();
    await Deno.remove(profile, { recursive: true }).catch(() => {});
    await Deno.remove(out, { recursive: true });
    await Deno.remove(rules, { recursive: true });
  }
});
