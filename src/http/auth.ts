/**
 * Who may change state through the API: with a token, only bearers of it; without one (loopback
 * only, see config), any local client — but never a web page of another origin, which a browser
 * would otherwise let post to 127.0.0.1 on the user's behalf.
 *
 * @module
 */

/** Null when the write is allowed, else the status and reason to answer with. */
export function checkWrite(req: Request, token: string | null): { status: number; error: string } | null {
  const origin = req.headers.get("origin");
  if (origin !== null && origin !== "null") {
    let host: string;
    try {
      host = new URL(origin).host;
    } catch {
      return { status: 403, error: "Origin header is not a URL" };
    }
    if (host !== req.headers.get("host")) {
      return { status: 403, error: `Cross-origin write from "${origin}" refused` };
    }
  }
  if (token === null) return null;
  const header = req.headers.get("authorization") ?? "";
  const match = /^Bearer\s+(.+)$/i.exec(header);
  if (match === null) return { status: 401, error: "Missing bearer token" };
  if (!sameText(match[1]!.trim(), token)) return { status: 401, error: "Wrong bearer token" };
  return null;
}

/** Compares in time independent of where the texts differ, so the token cannot be guessed byte by byte. */
function sameText(a: string, b: string): boolean {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  let diff = x.length ^ y.length;
  for (let i = 0; i < Math.max(x.length, y.length); i++) diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
  return diff === 0;
}
