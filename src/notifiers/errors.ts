/** Why a delivery failed: the class of the outcome, for logs, DLQ records and metrics. */
export type FailureReason =
  | "client"
  | "server"
  | "rate-limited"
  | "timeout"
  | "network"
  | "plugin"
  | "breaker";

/** A failed delivery, with whether trying again can help. Plugins throw it; anything else thrown counts as "plugin". */
export class DeliveryError extends Error {
  /** The class of the failure. */
  readonly reason: FailureReason;
  /** Whether another try can succeed: false sends the notification to the DLQ at once. */
  readonly retryable: boolean;
  /** The receiver's HTTP status, when it answered. */
  readonly status: number | undefined;
  /** How long the receiver asked to wait (`Retry-After`), used instead of the backoff's delay. */
  readonly retryAfterMs: number | undefined;
  /** `init` says why and whether to retry; `options.cause` keeps the underlying error. */
  constructor(
    message: string,
    init: { reason: FailureReason; retryable: boolean; status?: number; retryAfterMs?: number },
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "DeliveryError";
    this.reason = init.reason;
    this.retryable = init.retryable;
    this.status = init.status;
    this.retryAfterMs = init.retryAfterMs;
  }
}
