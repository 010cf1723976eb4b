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
  readonly reason: FailureReason;
  readonly retryable: boolean;
  readonly status: number | undefined;
  readonly retryAfterMs: number | undefined;
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
