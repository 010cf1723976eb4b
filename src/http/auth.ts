/**
 * Who may change state through the API: with a token, only bearers of it; without one (loopback
 * only, see config), any local client — but never a web page of another origin, which a browser
 * would otherwise let post to 127.0.0.1 on the user's behalf. (The `Host` of every request is
 * checked before, in host.ts, so the same-origin comparison here is not fooled by DNS rebinding.)
 *
 * @module
 */

/** Null when the write is allowed, else the status and reason to answer with. */
export function checkWrite(req: Request, token: string | null): { status: number; error: string } | null {
  const origin = req.headers.get("origin");
  // Sandboxed iframes and data: pages send the opaque origin "null": it can be anyone's page.
  if (origin === "null") return { status: 403, error: 'Writes from Origin "null" are refused' };
  if (origin !== null) {
    let from: URL;
    try {
      from = new URL(origin);
    } catch {
      return { status: 403, error: "Origin header is not a URL" };
    }
    if (from.host !== hostOf(from.protocol, req.headers.get("host"))) {
      return { status: 403, error: `Cross-origin write from "${origin}" refused` };
    }
  }
  // A page of another origin cannot send this type without a CORS preflight, which is never
  // granted; a form or a no-cors fetch can only send text/plain, form or multipart bodies.
  const type = req.headers.get("content-type")?.split(";")[0]?.trim().toLowerCase();
  if (type !== "application/json") {
    return { status: 415, error: `Content-Type must be application/json, got "${type ?? ""}"` };
  }
  if (token === null) return null;
  const header = req.headers.get("authorization") ?? "";
  const match = /^Bearer\s+(.+)$/i.exec(header);
  if (match === null) return { status: 401, error: "Missing bearer token" };
  if (!sameText(match[1]!.trim(), token)) return { status: 401, error: "Wrong bearer token" };
  return null;
}

/**
 * The Host header as a URL's host for `protocol`: lower case, the default port left out, as in an
 * Origin (a client or proxy that wrote "Sensors.Example:80" was refused as cross-origin); null when
 * it is not a host alone.
 */
function hostOf(protocol: string, header: string | null): string | null {
  if (header === null || /[/?#@\\]/.test(header)) return null;
  try {
    return new URL(`${protocol}//${header}`).host;
  } catch {
    return null;
  }
}

/** Compares in time independent of where the texts differ, so the token cannot be guessed byte by byte. */
function sameText(a: string, b: string): boolean {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  let diff = x.length ^ y.length;
  for (let i = 0; i < Math.max(x.length, y.length); i++) diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
  return diff === 0;
}
