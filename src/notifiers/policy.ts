/**
 * The delivery policy, in one place: which HTTP outcomes succeed, retry or fail for good, and how
 * long to wait between tries. Plugins reach it through `postJson` / `classifyResponse` in the
 * public API; the delivery lanes through `retryDelay`.
 *
 * @module
 */
import { redact } from "../log.ts";
import { DeliveryError } from "./errors.ts";

export interface RetryPolicy {
  /** A cap on tries per notification, the first included, besides the time budget (Infinity: none). */
  maxAttempts: number;
  /** Backoff before the first retry; doubles on each retry, up to `maxDelayMs` (full jitter). */
  baseDelayMs: number;
  maxDelayMs: number;
  /**
   * The budget users reason about: a notification not delivered this long after it reached its
   * notifier (a group: after it was sent) is dead-lettered. The last retry is made at the deadline.
   */
  giveUpAfterMs: number;
  /** One try (a plugin's `notify`) is abandoned after this long. */
  timeoutMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  // No cap on tries by default: 8 tries with the breaker's cooldown ran out at ~35 s, so the 2 min
  // budget was never reached and a 60 s outage dead-lettered every alert.
  maxAttempts: Number.POSITIVE_INFINITY,
  baseDelayMs: 500,
  maxDelayMs: 30_000,
  giveUpAfterMs: 120_000,
  timeoutMs: 15_000,
};

/**
 * Milliseconds to wait before retry number `attempt` (1 = the first retry): exponential backoff with
 * full jitter, or the receiver's `Retry-After` when it gave one (capped like the backoff).
 */
export function retryDelay(
  policy: RetryPolicy,
  attempt: number,
  error: DeliveryError,
  random: () => number = Math.random,
): number {
  if (error.retryAfterMs !== undefined) return Math.min(error.retryAfterMs, policy.maxDelayMs);
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  return Math.floor(random() * ceiling);
}

/** `Retry-After` in seconds or as an HTTP date, in milliseconds from `now`; undefined when unreadable. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null || value.trim() === "") return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/**
 * The decision for an HTTP response: null for 2xx, otherwise the DeliveryError to throw.
 * `body` is the start of the response body, kept in the error for the operator.
 */
export function classifyResponse(
  status: number,
  headers: Headers,
  body = "",
): DeliveryError | null {
  if (status >= 200 && status < 300) return null;
  const detail = body.trim() === "" ? "" : `: ${JSON.stringify(body.trim().slice(0, 200))}`;
  if (status === 429) {
    const retryAfterMs = parseRetryAfter(headers.get("retry-after"));
    return new DeliveryError(`Receiver answered 429 Too Many Requests${detail}`, {
      reason: "rate-limited",
      retryable: true,
      status,
      ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
    });
  }
  if (status >= 500) {
    return new DeliveryError(`Receiver answered ${status}${detail}`, {
      reason: "server",
      retryable: true,
      status,
    });
  }
  if (status >= 300 && status < 400) {
    return new DeliveryError(`Receiver answered ${status}: redirects are not followed`, {
      reason: "client",
      retryable: false,
      status,
    });
  }
  return new DeliveryError(`Receiver answered ${status}${detail}`, {
    reason: "client",
    retryable: false,
    status,
  });
}

/** A thrown value from `fetch` or a plugin, as a DeliveryError: timeouts and transport errors retry. */
export function classifyError(err: unknown, timedOut: boolean): DeliveryError {
  if (err instanceof DeliveryError) return err;
  // fetch says "fetch failed" and keeps what happened (with the URL) in `cause`.
  const cause = err instanceof Error && err.cause instanceof Error ? `: ${err.cause.message}` : "";
  const message = redact(err instanceof Error ? `${err.message}${cause}` : String(err));
  if (timedOut) {
    return new DeliveryError("Delivery timed out", { reason: "timeout", retryable: true }, { cause: err });
  }
  if (isTransportError(err)) {
    return new DeliveryError(`Cannot reach receiver: ${message}`, { reason: "network", retryable: true });
  }
  return new DeliveryError(`Plugin failed: ${message}`, { reason: "plugin", retryable: true });
}

/**
 * Socket errors as Deno (`Deno.errors.*`) and Node's layer (`node:net`, `node:dns`, npm SDKs over
 * `node:http`) name them: the receiver or the way to it, not the plugin.
 */
const TRANSPORT_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "ETIMEDOUT",
  "EPIPE",
  "ENOTCONN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EADDRNOTAVAIL",
  "ENOTFOUND",
  "EAI_AGAIN",
]);
const TRANSPORT_ERRORS = [
  Deno.errors.ConnectionRefused,
  Deno.errors.ConnectionReset,
  Deno.errors.ConnectionAborted,
  Deno.errors.NotConnected,
  Deno.errors.BrokenPipe,
  Deno.errors.TimedOut,
  Deno.errors.AddrNotAvailable,
  Deno.errors.NetworkUnreachable,
];

/**
 * Whether `err` says the receiver could not be reached, which counts against its breaker. `fetch`
 * throws a TypeError "fetch failed" (Deno 2: "Fetch failed: …" for a blocked port; older releases
 * "error sending request …"); any other TypeError is the plugin's own code (a property of undefined,
 * a call of what is not a function), and counting it as "network" let one alert a plugin cannot
 * handle open the breaker over the alerts it can (tests/notifiers/delivery_test.ts).
 */
export function isTransportError(err: unknown): boolean {
  if (TRANSPORT_ERRORS.some((kind) => err instanceof kind)) return true;
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === "string" && TRANSPORT_CODES.has(code)) return true;
  return err instanceof TypeError &&
    /^(fetch failed|error sending request|failed to fetch|networkerror)/i.test(err.message);
}

/**
 * How much of an error answer's body `postJson` reads for the message (which keeps 200 characters).
 * Reading it whole let a receiver answering 500 with an endless body stream into memory until the
 * timeout: 1,237 MiB in 3 s on loopback (tests/notifiers/policy_test.ts, before the fix).
 */
const ERROR_BODY_BYTES = 2048;

/**
 * The first `maxBytes` of `body` as UTF-8 text, then the rest cancelled (the connection is dropped,
 * not drained). A character cut at the limit is left out rather than shown as U+FFFD.
 */
export async function readStart(body: ReadableStream<Uint8Array> | null, maxBytes: number): Promise<string> {
  if (body === null) return "";
  const reader = body.getReader();
  const start = new Uint8Array(maxBytes);
  let size = 0;
  try {
    while (size < maxBytes) {
      const { value, done } = await reader.read();
      if (done) break;
      const take = Math.min(value.byteLength, maxBytes - size);
      start.set(value.subarray(0, take), size);
      size += take;
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
  // `stream: true` keeps an incomplete last sequence back (to be completed by bytes never read).
  return new TextDecoder().decode(start.subarray(0, size), { stream: true });
}

/** How `postJson` sends its request. */
export interface PostOptions {
  /** Request headers besides `content-type: application/json`. */
  headers?: Record<string, string>;
  /** Gives up on the request (a retryable "timeout") after this many milliseconds. */
  timeoutMs: number;
  /** Aborts the request: pass `NotifyContext.signal`. */
  signal?: AbortSignal;
  /** Values to hide from error messages besides the registered secrets (e.g. the URL itself). */
  secrets?: string[];
  /** The client to connect with: `pinnedClient` sends the request to the address the guard checked. */
  client?: Deno.HttpClient;
}

/**
 * POSTs `body` and applies the delivery policy: resolves on 2xx, throws a DeliveryError otherwise.
 * Redirects are not followed; transport errors never carry the URL or a secret.
 */
export async function postJson(url: string, body: string, opts: PostOptions): Promise<void> {
  const hide = (text: string) => {
    let out = redact(text);
    for (const s of [url, ...(opts.secrets ?? [])]) if (s.length >= 4) out = out.replaceAll(s, "[REDACTED]");
    return out;
  };
  const timeout = AbortSignal.timeout(opts.timeoutMs);
  const signal = opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout;
  let response: Response;
  try {
    response = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", ...opts.headers },
      body,
      redirect: "manual",
      signal,
      ...(opts.client === undefined ? {} : { client: opts.client }),
    });
  } catch (err) {
    const e = classifyError(err, timeout.aborted);
    // No `cause`: the transport error's text carries the URL, which may be the secret.
    throw new DeliveryError(hide(e.message), {
      reason: e.reason,
      retryable: e.retryable,
    });
  }
  let text = "";
  try {
    text = response.status >= 200 && response.status < 300
      ? ""
      : await readStart(response.body, ERROR_BODY_BYTES);
  } catch {
    // The status decides; an unreadable body only loses detail.
  } finally {
    if (!response.bodyUsed) await response.body?.cancel().catch(() => {});
  }
  // Hidden before `classifyResponse` keeps the first 200 characters: a secret the receiver echoed
  // across that cut was no longer whole, and its first part stayed in the log and the DLQ record.
  const error = classifyResponse(response.status, response.headers, hide(text));
  if (error !== null) {
    throw new DeliveryError(hide(error.message), {
      reason: error.reason,
      retryable: error.retryable,
      ...(error.status !== undefined ? { status: error.status } : {}),
      ...(error.retryAfterMs !== undefined ? { retryAfterMs: error.retryAfterMs } : {}),
    });
  }
}
