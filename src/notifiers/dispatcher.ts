import type { SensorAlert } from "../contract/schemas.ts";
import { buildDlqRecord } from "../dlq/record.ts";
import { type Logger, redact } from "../log.ts";
import type { OutRecord } from "../transport/output.ts";
import type { Notification, Notifier } from "./plugin.ts";

export interface NotifierInstance {
  name: string;
  plugin: string;
  notifier: Notifier;
}

export interface DispatcherOptions {
  notifiers: () => readonly NotifierInstance[];
  logger: Logger;
  /** Writes DLQ records for notifications that failed for good; resolves once they are durable. */
  deadLetter: (records: OutRecord[]) => Promise<void>;
  dlqTopic: string;
  alertsTopic: string;
  timeoutMs?: number;
  attempts?: number;
}

/** A notification's id is stable for one alert state, so every retry and redelivery shares it. */
export function notificationId(alert: SensorAlert): string {
  return `${alert.alert_id}.${alert.state}`;
}

/**
 * The notifier stage: delivers each alert to the notifiers and resolves only once every delivery
 * succeeded or was recorded in the DLQ, which is what allows the caller to commit.
 */
export class Dispatcher {
  readonly #opts: DispatcherOptions;
  readonly counters = { delivered: 0, failed: 0 };

  constructor(opts: DispatcherOptions) {
    this.#opts = opts;
  }

  async deliver(alerts: readonly SensorAlert[]): Promise<void> {
    const notifications: Notification[] = alerts
      // An acknowledgement update on the topic is state for consumers, not a new notification.
      .filter((a) => !(a.acknowledged && a.state === "firing" && a["ack_update"] === true))
      .map((alert) => ({ id: notificationId(alert), alert }));
    if (notifications.length === 0) return;
    const failures: OutRecord[] = [];
    await Promise.all(
      this.#opts.notifiers().map(async (inst) => {
        for (const n of notifications) {
          const error = await this.#attempt(inst, [n]);
          if (error === null) {
            this.counters.delivered++;
            continue;
          }
          this.counters.failed++;
          failures.push({
            topic: this.#opts.dlqTopic,
            key: `${n.alert.sensor_type}:${n.alert.sensor_id}`,
            value: JSON.stringify(buildDlqRecord({
              topic: this.#opts.alertsTopic,
              key: `${n.alert.sensor_type}:${n.alert.sensor_id}`,
              value: JSON.stringify(n.alert),
              partition: null,
              offset: null,
              stage: "notify",
              error: redact(`Notifier "${inst.name}" failed: ${error.message}`),
              retryCount: (this.#opts.attempts ?? 3) - 1,
              extra: { notifier: inst.name, notification_id: n.id },
            })),
          });
        }
      }),
    );
    if (failures.length > 0) await this.#opts.deadLetter(failures);
  }

  async #attempt(inst: NotifierInstance, batch: Notification[]): Promise<Error | null> {
    const attempts = this.#opts.attempts ?? 3;
    let last: Error | null = null;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(), this.#opts.timeoutMs ?? 10_000);
      try {
        await Promise.race([
          inst.notifier.notify(batch, { signal: controller.signal, attempt }),
          new Promise((_, reject) =>
            controller.signal.addEventListener("abort", () => reject(new Error("Timed out")), { once: true })
          ),
        ]);
        return null;
      } catch (err) {
        last = err instanceof Error ? err : new Error(String(err));
        this.#opts.logger.warn("Notification failed", {
          notifier: inst.name,
          attempt,
          error: redact(last.message),
        });
        if (attempt < attempts) await new Promise((r) => setTimeout(r, 200 * 2 ** (attempt - 1)));
      } finally {
        clearTimeout(timer);
      }
    }
    return last;
  }
}
