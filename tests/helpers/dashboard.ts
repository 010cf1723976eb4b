/**
 * What a stand-in server for the dashboard's browser tests answers besides its `/api/stream`: the
 * page and every script next to it, as the service serves them, and the reads the page's panels
 * make (silences, alerts) answered empty, so that a test sees only the errors of what it tests.
 */
import type { Page } from "playwright-core";
import { launchChromium } from "./chromium.ts";

const HTTP_DIR = new URL("../../src/http/", import.meta.url);

export function dashboardResponse(path: string): Response | null {
  const file = (name: string) => Deno.readTextFileSync(new URL(name, HTTP_DIR));
  if (path === "/") {
    return new Response(file("dashboard.html"), { headers: { "content-type": "text/html; charset=utf-8" } });
  }
  if (/^\/\w+\.js$/.test(path)) {
    try {
      return new Response(file(path.slice(1)), {
        headers: { "content-type": "text/javascript; charset=utf-8" },
      });
    } catch {
      return new Response("", { status: 404 });
    }
  }
  if (path === "/favicon.ico") return new Response(null, { status: 204 });
  if (path === "/api/silences") return Response.json({ silences: [] });
  if (path === "/api/alerts") return Response.json({ active: [], recent: [] });
  return null;
}

/** `/api/stream` as the service opens it: hello (embedded mode, no token), then each `[event, data]` once. */
export function streamResponse(...events: [string, unknown][]): Response {
  const body = [["hello", { mode: "embedded", auth: false }], ...events]
    .map(([event, data]) => `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`).join("");
  return new Response(body, { headers: { "content-type": "text/event-stream" } });
}

/**
 * A stand-in server on a free port of 127.0.0.1: what `answer` gives for a path (null: not its own),
 * else the dashboard's files and empty reads (`dashboardResponse`), else 404.
 */
export function standIn(answer: (path: string) => Response | null): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    const path = new URL(req.url).pathname;
    return answer(path) ?? dashboardResponse(path) ?? new Response("{}", { status: 404 });
  });
}

/** A firing alert of `sensor-hot` on sensor `id` (its alert id too), as the stream carries it. */
export function streamedAlert(id: string, over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    alert_id: id,
    sensor_id: id,
    sensor_type: "temperature",
    priority: "high",
    message: `${id} is hot`,
    value: 50,
    threshold: 40,
    timestamp: new Date().toISOString(),
    acknowledged: false,
    rule_id: "sensor-hot",
    state: "firing",
    labels: {},
    ...over,
  };
}

/**
 * Opens the dashboard of the stand-in `server` in headless Chromium (a fresh profile) and hands `use`
 * the tab and the page's script errors as they come; then closes the browser, shuts the server down
 * and removes the profile, whatever happened.
 */
export async function onStandIn(
  server: Deno.HttpServer<Deno.NetAddr>,
  use: (tab: Page, errors: string[]) => Promise<void>,
): Promise<void> {
  const profile = await Deno.makeTempDir({ prefix: "chromium-profile-" });
  const context = await launchChromium(profile);
  try {
    const tab = context.pages()[0] ?? await context.newPage();
    const errors: string[] = [];
    tab.on("pageerror", (e) => errors.push(e.message));
    await tab.goto(`http://127.0.0.1:${server.addr.port}/`);
    await use(tab, errors);
  } finally {
    await context.close();
    await server.shutdown();
    await Deno.remove(profile, { recursive: true }).catch(() => {});
  }
}
