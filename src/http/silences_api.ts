/**
 * `/api/silences`: list (GET), create (POST), read one (GET /:id), extend (PUT or POST /:id with a new
 * `ends_at`) and expire (DELETE /:id). Writes need what an acknowledgement needs (auth.ts).
 *
 * @module
 */
import { formatIssues } from "../decode/decode.ts";
import type { Logger } from "../log.ts";
import { SilenceExtension, SilenceFieldError, SilenceInput } from "../notifiers/silences/silence.ts";
import { SilenceLimitError, type Silences } from "../notifiers/silences/store.ts";
import { checkWrite } from "./auth.ts";

export interface SilencesRouteOptions {
  silences: Silences | null;
  token: string | null;
  logger: Logger;
  json: (body: unknown, status?: number, headers?: Record<string, string>) => Response;
}

/** Answers a request under `/api/silences`. */
export async function silencesRoute(
  req: Request,
  path: string,
  opts: SilencesRouteOptions,
): Promise<Response> {
  const { json, logger } = opts;
  const error = (status: number, message: string, headers: Record<string, string> = {}) =>
    json({ error: message }, status, headers);
  const rest = path.slice("/api/silences".length);
  let id: string | null = null;
  if (rest !== "" && rest !== "/") {
    try {
      id = decodeURIComponent(rest.slice(1));
    } catch {
      return error(400, `Silence id "${rest.slice(1)}" is not valid percent-encoding`);
    }
    if (id.includes("/")) return error(404, `No route for "${path}"`);
  }
  const allowed = id === null ? "GET, HEAD, POST" : "GET, HEAD, PUT, POST, DELETE";
  if (!allowed.split(", ").includes(req.method)) return error(405, `Use ${allowed}`, { allow: allowed });
  const reading = req.method === "GET" || req.method === "HEAD";
  if (!reading) {
    const denied = checkWrite(req, opts.token);
    if (denied !== null) return error(denied.status, denied.error);
  }
  const silences = opts.silences;
  if (silences === null) return error(503, "Service is starting");
  if (reading) {
    if (id === null) return json({ silences: silences.list() });
    const one = silences.get(id);
    return one === null ? error(404, `No silence "${id}"`) : json({ silence: one });
  }
  try {
    if (id === null) {
      const body = await jsonBody(req);
      const input = SilenceInput.safeParse(body);
      if (!input.success) return error(400, formatIssues(input.error.issues));
      const silence = await silences.create(input.data);
      logger.info("Silence created", {
        silence: silence.id,
        by: silence.created_by,
        ends_at: silence.ends_at,
      });
      return json({ silence }, 201);
    }
    if (req.method === "DELETE") {
      const silence = await silences.expire(id);
      if (silence === null) return error(404, `No silence "${id}"`);
      logger.info("Silence expired", { silence: id });
      return json({ silence });
    }
    const ext = SilenceExtension.safeParse(await jsonBody(req));
    if (!ext.success) return error(400, formatIssues(ext.error.issues));
    const silence = await silences.extend(id, ext.data.ends_at);
    if (silence === null) return error(404, `No silence "${id}"`);
    logger.info("Silence extended", { silence: id, ends_at: silence.ends_at });
    return json({ silence });
  } catch (err) {
    if (err instanceof SilenceFieldError || err instanceof SyntaxError) return error(400, err.message);
    if (err instanceof SilenceLimitError) return error(409, err.message);
    throw err;
  }
}

async function jsonBody(req: Request): Promise<unknown> {
  const text = await req.text();
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new SyntaxError(`Body is not JSON: ${(err as Error).message}`, { cause: err });
  }
}
