/**
 * What a stand-in server for the dashboard's browser tests answers besides its `/api/stream`: the
 * page and every script next to it, as the service serves them, and the reads the page's panels
 * make (silences, alerts) answered empty, so that a test sees only the errors of what it tests.
 */
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
