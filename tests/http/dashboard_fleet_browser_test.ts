/**
 * The dashboard with a fleet of 10,000 sensors, in headless Chromium: the page is fed by a stand-in
 * for `/api/stream` that sends a known fleet (so every count is known) and then live updates the test
 * pushes. Only structure is asserted (what is rendered, in which order, how many DOM nodes); how long
 * the main thread is busy is measured by `deno task bench:dashboard`.
 */
import assert from "node:assert/strict";
import type { Page } from "playwright-core";
import { waitFor } from "../helpers/kafka.ts";
import { dashboardResponse } from "../helpers/dashboard.ts";
import { launchChromium } from "../helpers/chromium.ts";

const SENSORS = 10_000;
const TYPES = ["temperature", "humidity", "pressure", "co2", "light"];
const STATES = ["ok", "low", "normal", "high", "critical"];

interface Sensor {
  sensor_id: string;
  sensor_type: string;
  unit: string;
  location: string | null;
  count: number;
  avg: number;
  min: number;
  max: number;
  last_value: number;
  last_update: string;
  recent: number[];
  threshold: { min: number | null; max: number | null; rule: string } | null;
  state: string;
}

/** 10,000 sensors over 12 buildings and a few without location; 42 in alert, spread over the ids. */
function fleet(): Sensor[] {
  const out: Sensor[] = [];
  for (let i = 0; i < SENSORS; i++) {
    const state = i % 997 === 0
      ? "critical"
      : i % 1231 === 7
      ? "high"
      : i % 1500 === 11
      ? "normal"
      : i % 701 === 3
      ? "low"
      : "ok";
    out.push({
      sensor_id: `s-${String(i).padStart(5, "0")}`,
      sensor_type: TYPES[i % TYPES.length]!,
      unit: "u",
      location: i % 500 === 499 ? null : `Building ${String.fromCharCode(65 + (i % 12))}`,
      count: 1,
      avg: 20,
      min: 20,
      max: 20,
      last_value: 20 + (i % 10),
      last_update: new Date(0).toISOString(),
      recent: [20, 21, 20 + (i % 10)],
      threshold: { min: 0, max: 30, rule: "r" },
      state,
    });
  }
  return out;
}

const RANK: Record<string, number> = { ok: 0, low: 1, normal: 2, high: 3, critical: 4 };
const byAlertThenId = (a: Sensor, b: Sensor) =>
  RANK[b.state]! - RANK[a.state]! || (a.sensor_id < b.sensor_id ? -1 : 1);

/** Locations worst first: by the worst state in the location, then by name, no location last. */
function expectedGroups(sensors: Sensor[]): string[] {
  return [...new Set(sensors.map((s) => s.location ?? ""))].map((loc) => ({
    loc,
    worst: Math.max(...sensors.filter((s) => (s.location ?? "") === loc).map((s) => RANK[s.state]!)),
  })).sort((a, b) =>
    b.worst - a.worst || Number(a.loc === "") - Number(b.loc === "") || (a.loc < b.loc ? -1 : 1)
  )
    .map((g) => g.loc);
}

/** A stand-in server for the dashboard's files and stream; `push` sends to the open stream. */
function standIn(sensors: Sensor[]) {
  const streams = new Set<ReadableStreamDefaultController<Uint8Array>>();
  const sse = (event: string, data: unknown) =>
    new TextEncoder().encode(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    const path = new URL(req.url).pathname;
    const own = dashboardResponse(path);
    if (own !== null) return own;
    if (path !== "/api/stream") return new Response("{}", { status: 404 });
    let ctl: ReadableStreamDefaultController<Uint8Array>;
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        ctl = c;
        streams.add(c);
        c.enqueue(sse("hello", { mode: "embedded", auth: false }));
        // As the service sends its initial picture: in chunks of at most 1,000 sensors.
        for (let i = 0; i < sensors.length; i += 1000) c.enqueue(sse("sensors", sensors.slice(i, i + 1000)));
        c.enqueue(sse("alerts", { alerts: [], dropped: 0 }));
      },
      cancel() {
        streams.delete(ctl);
      },
    });
    return new Response(body, { headers: { "content-type": "text/event-stream" } });
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}/`,
    push(event: string, data: unknown) {
      for (const c of streams) c.enqueue(sse(event, data));
    },
    async close() {
      for (const c of streams) c.close();
      await server.shutdown();
    },
  };
}

/** The rendered cards in reading order (top to bottom, left to right). */
async function renderedCards(page: Page): Promise<{ id: string; state: string }[]> {
  await settled(page);
  // In-page code is a string: the tests are type-checked without the DOM's types.
  return await page.evaluate(`[...document.querySelectorAll("#sensors [data-sensor]")]
    .map((n) => ({ n, r: n.getBoundingClientRect() }))
    .sort((a, b) => a.r.top - b.r.top || a.r.left - b.r.left)
    .map(({ n }) => ({ id: n.dataset.sensor, state: n.dataset.state }))`);
}

/** The page renders changes on the next animation frame: wait for it (and the one after). */
const settled = (page: Page) =>
  page.evaluate(`new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))`);

const domNodes = async (page: Page) => {
  await settled(page);
  return await page.evaluate<number>(`document.getElementsByTagName("*").length`);
};
const cardNode = (id: string) => `document.querySelector('[data-sensor="${id}"]')`;

const matching = async (page: Page) => {
  await settled(page);
  return Number(await page.locator("#sensors").getAttribute("data-matching"));
};

Deno.test("the dashboard shows a fleet of 10,000 sensors: alerts first, filters, groups, overview, few DOM nodes", async (t) => {
  const sensors = fleet();
  const server = standIn(sensors);
  const profile = await Deno.makeTempDir({ prefix: "chromium-profile-" });
  const context = await launchChromium(profile, { width: 1280, height: 800 });
  try {
    const page = context.pages()[0] ?? await context.newPage();
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    page.on("console", (m) => {
      if (m.type() === "error") errors.push(m.text());
    });
    await page.goto(server.url);
    await page.locator(`#sensors[data-total="${SENSORS}"]`).waitFor({ timeout: 30_000 });
    await page.locator("#sensors [data-sensor]").first().waitFor({ timeout: 30_000 });
    const inAlert = sensors.filter((s) => s.state !== "ok").sort(byAlertThenId);
    assert.equal(inAlert.length, 42, "the fixture: sensors in alert among 10,000");

    await t.step("only what is visible is in the DOM", async () => {
      const nodes = await domNodes(page);
      assert.ok(nodes < 2000, `${nodes} DOM nodes for ${SENSORS} sensors`);
      const cards = (await renderedCards(page)).length;
      assert.ok(cards > 0 && cards < 200, `${cards} cards rendered`);
    });

    await t.step("the overview counts sensors by state per location", async () => {
      const locations = new Map<string, Record<string, number>>();
      for (const s of sensors) {
        const row = locations.get(s.location ?? "") ?? Object.fromEntries(STATES.map((st) => [st, 0]));
        row[s.state]!++;
        locations.set(s.location ?? "", row);
      }
      for (const [location, row] of locations) {
        for (const state of STATES) {
          const cell = page.locator(`#overview [data-location="${location}"] [data-state="${state}"]`);
          assert.equal(await cell.textContent(), String(row[state]), `${location || "no location"} ${state}`);
        }
      }
    });

    await t.step(
      "grouped by location, the locations with the worst alerts come first, alerts first in each",
      async () => {
        const groups = expectedGroups(sensors);
        const first = await page.locator("#sensors .group").first().getAttribute("data-location");
        assert.equal(first, groups[0]);
        const overview = await page.evaluate<string[]>(
          `[...document.querySelectorAll("#overview tr[data-location]")].map((r) => r.dataset.location)`,
        );
        assert.deepEqual(
          overview,
          groups,
          "the overview lists the locations in the same order",
        );
        const group = sensors.filter((s) => (s.location ?? "") === first).sort(byAlertThenId);
        const shown = (await renderedCards(page)).slice(0, 3).map((c) => c.id);
        assert.deepEqual(shown, group.slice(0, 3).map((s) => s.sensor_id));
      },
    );

    await t.step("ungrouped, every sensor in alert comes before any sensor that is ok", async () => {
      await page.locator("#fleet-group").uncheck();
      const shown = await renderedCards(page);
      const expected = inAlert.slice(0, Math.min(shown.length, inAlert.length));
      assert.deepEqual(shown.slice(0, expected.length).map((c) => c.id), expected.map((s) => s.sensor_id));
      assert.equal(await matching(page), SENSORS);
    });

    await t.step("filters by state, type, location and text, and clearing them brings all back", async () => {
      await page.locator("#fleet-state").selectOption("critical");
      const critical = sensors.filter((s) => s.state === "critical");
      assert.equal(await matching(page), critical.length);
      assert.deepEqual((await renderedCards(page)).map((c) => c.id), critical.map((s) => s.sensor_id));

      await page.locator("#fleet-state").selectOption("alert");
      assert.equal(await matching(page), inAlert.length);

      await page.locator("#fleet-state").selectOption("");
      await page.locator("#fleet-type").selectOption("humidity");
      await page.locator("#fleet-location").selectOption("Building B");
      const both = sensors.filter((s) => s.sensor_type === "humidity" && s.location === "Building B");
      assert.equal(await matching(page), both.length);
      assert.ok((await renderedCards(page)).every((c) => both.some((s) => s.sensor_id === c.id)));

      await page.locator("#fleet-type").selectOption("");
      await page.locator("#fleet-location").selectOption("");
      await page.locator("#fleet-text").fill("s-04242");
      assert.deepEqual((await renderedCards(page)).map((c) => c.id), ["s-04242"]);
      await page.locator("#fleet-text").fill("");
      assert.equal(await matching(page), SENSORS);
    });

    await t.step("a click on an overview count filters to that location and state", async () => {
      await page.locator('#overview [data-location="Building A"] [data-state="ok"]').click();
      const expected = sensors.filter((s) => s.location === "Building A" && s.state === "ok");
      assert.equal(await matching(page), expected.length);
      assert.equal(await page.locator("#fleet-location").inputValue(), "Building A");
      assert.equal(await page.locator("#fleet-state").inputValue(), "ok");
      await page.locator("#fleet-location").selectOption("");
      await page.locator("#fleet-state").selectOption("");
    });

    await t.step(
      "a live update changes cards in place and moves a sensor that starts alerting up",
      async () => {
        const third = (await renderedCards(page))[2]!.id;
        await page.evaluate(
          `${cardNode(third)}.mark = true; ${cardNode(third)}.querySelector(".value").mark = true; ` +
            `${cardNode(third)}.querySelector("polyline").mark = true`,
        );
        const before = sensors.find((s) => s.sensor_id === third)!;
        const newcomer = sensors.find((s) => s.sensor_id === "s-00001")!;
        assert.equal(newcomer.state, "ok");
        server.push("sensors", [
          { ...before, last_value: 1234.5, count: 2 },
          { ...newcomer, state: "critical", last_value: 99 },
        ]);
        const card = page.locator(`[data-sensor="${third}"] .value`);
        await waitFor("the value to update", async () => /1235/.test(await card.textContent() ?? ""), 20_000);
        const same = await page.evaluate(`${cardNode(third)}.mark`);
        assert.equal(same, true, "the card was updated in place, not rebuilt");
        // Its contents too: new nodes in a card are style, layout and paint work for the frame.
        const kept = await page.evaluate(
          `[${cardNode(third)}.querySelector(".value").mark, ${
            cardNode(third)
          }.querySelector("polyline").mark]`,
        );
        assert.deepEqual(kept, [true, true], "the card's value and sparkline were rewritten, not replaced");
        const shown = (await renderedCards(page)).map((c) => c.id);
        assert.equal(shown[1], "s-00001", "the newly critical sensor comes right after s-00000");
        const cell = page.locator('#overview [data-location="Building B"] [data-state="critical"]');
        assert.equal(
          await cell.textContent(),
          String(1 + sensors.filter((s) => s.location === "Building B" && s.state === "critical").length),
        );
        newcomer.state = "critical";
      },
    );

    await t.step(
      "grouped, live updates move a sensor within its location and a location down; a click folds one",
      async () => {
        await page.locator("#fleet-group").check();
        const firstCards = async (n: number) => (await renderedCards(page)).slice(0, n).map((c) => c.id);
        const expectFirst = (loc: string, n: number) =>
          sensors.filter((s) => (s.location ?? "") === loc).sort(byAlertThenId).slice(0, n).map((s) =>
            s.sensor_id
          );
        const overviewOrder = () =>
          page.evaluate<string[]>(
            `[...document.querySelectorAll("#overview tr[data-location]")].map((r) => r.dataset.location)`,
          );
        assert.equal(expectedGroups(sensors)[0], "Building A");

        // Within Building A (its worst state stays critical): s-00012 starts alerting.
        const riser = sensors.find((s) => s.sensor_id === "s-00012")!;
        assert.equal(riser.state, "ok");
        riser.state = "high";
        server.push("sensors", [riser]);
        await waitFor("s-00012 to rise", async () => (await firstCards(4)).includes("s-00012"), 20_000);
        assert.deepEqual(await firstCards(4), expectFirst("Building A", 4));

        // Building A's only critical sensor recovers: the location goes below those with a critical one.
        const recovered = sensors.find((s) => s.sensor_id === "s-00000")!;
        recovered.state = "ok";
        const rowOf = (loc: string) => `document.querySelector('#overview tr[data-location="${loc}"]')`;
        await page.evaluate(`${rowOf("Building A")}.mark = true; ${rowOf("Building B")}.mark = true`);
        server.push("sensors", [recovered]);
        const order = expectedGroups(sensors);
        assert.notEqual(order[0], "Building A");
        await waitFor("Building A to move down", async () => (await overviewOrder())[0] === order[0], 20_000);
        assert.deepEqual(await overviewOrder(), order);
        assert.deepEqual(
          await page.evaluate(`[${rowOf("Building A")}.mark, ${rowOf("Building B")}.mark]`),
          [true, true],
          "the overview's rows were moved, not rebuilt",
        );
        assert.equal(await page.locator("#sensors .group").first().getAttribute("data-location"), order[0]);
        assert.deepEqual(await firstCards(3), expectFirst(order[0]!, 3));

        // A click on a location's header folds it: the next location's sensors come right after it.
        await page.locator(`#sensors .group[data-location="${order[0]}"]`).click();
        assert.deepEqual(await firstCards(3), expectFirst(order[1]!, 3));
        await page.locator(`#sensors .group[data-location="${order[0]}"]`).click();
        assert.deepEqual(await firstCards(3), expectFirst(order[0]!, 3));
        await page.locator("#fleet-group").uncheck();
      },
    );

    await t.step("a live update of 600 sensors changing state at once puts each in its place", async () => {
      // Every 16th sensor turns high or goes back to ok, in one message.
      const changed = sensors.filter((_, i) => i % 16 === 5).slice(0, 600);
      for (const [i, s] of changed.entries()) s.state = s.state === "ok" && i % 2 === 0 ? "high" : "ok";
      await page.evaluate(`document.getElementById("sensors").scrollTop = 0`);
      server.push("sensors", changed);
      // Ungrouped, with no filter: the order the update left, not one sorted for a new filter.
      const order = sensors.slice().sort(byAlertThenId).map((s) => s.sensor_id);
      const shown = async () => (await renderedCards(page)).map((c) => c.id);
      const inOrder = async () => {
        const cards = await shown();
        return cards.length > 0 && cards.every((id, i) => id === order[i]);
      };
      await waitFor("the cards in view to be the first of the new order", inOrder, 20_000);
      await page.locator("#fleet-state").selectOption("alert");
      assert.equal(await matching(page), sensors.filter((s) => s.state !== "ok").length);
      await page.locator("#fleet-state").selectOption("");
    });

    await t.step("an alerts message rebuilds the rows of the alerts that changed only", async () => {
      const alert = (id: string, priority: string) => ({
        alert_id: id,
        sensor_id: id,
        sensor_type: "temperature",
        priority,
        message: `${id} is hot`,
        value: 50,
        threshold: 40,
        timestamp: new Date(0).toISOString(),
        acknowledged: false,
        rule_id: "sensor-hot",
        state: "firing",
        labels: {},
      });
      server.push("alerts", { alerts: [alert("a-1", "high"), alert("a-2", "low")], dropped: 0 });
      const row = (id: string) => `document.querySelector('#alerts [data-alert-id="${id}"]')`;
      await page.locator('#alerts [data-alert-id="a-2"] button.silence').waitFor({ timeout: 20_000 });
      await page.evaluate(`${row("a-1")}.mark = true; ${row("a-2")}.mark = true`);
      server.push("alerts", { alerts: [alert("a-2", "critical")], dropped: 0 });
      await waitFor(
        "a-2 to turn critical",
        async () => await page.locator('#alerts [data-alert-id="a-2"] .prio').textContent() === "critical",
        20_000,
      );
      const ids = await page.evaluate<string[]>(
        `[...document.querySelectorAll("#alerts [data-alert-id]")].map((n) => n.dataset.alertId)`,
      );
      assert.deepEqual(ids, ["a-2", "a-1"], "the critical alert first");
      assert.equal(await page.evaluate(`${row("a-1")}.mark`), true, "the unchanged alert's row is kept");
      assert.equal(await page.locator('#alerts [data-alert-id="a-1"] button.silence').count(), 1);
    });

    await t.step("scrolling to the end renders the last sensors, still with few DOM nodes", async () => {
      await page.evaluate(`{ const n = document.getElementById("sensors"); n.scrollTop = n.scrollHeight; }`);
      const last = sensors.filter((s) => s.state === "ok").map((s) => s.sensor_id).sort().at(-1)!;
      await page.locator(`[data-sensor="${last}"]`).waitFor({ timeout: 20_000 });
      const nodes = await domNodes(page);
      assert.ok(nodes < 2000, `${nodes} DOM nodes after scrolling`);
    });

    await page.screenshot({ path: "tests/artifacts/dashboard-fleet.png" });
    assert.deepEqual(errors, [], "no script errors on the page");
  } finally {
    await context.close();
    await server.close();
    await Deno.remove(profile, { recursive: true }).catch(() => {});
  }
});
