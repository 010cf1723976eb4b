/**
 * An operator's acknowledgement of an open alert, in the thread that holds its episode.
 *
 * @module
 */
import { alertKey, type SensorAlert } from "../contract/schemas.ts";
import type { Pipeline } from "../pipeline.ts";
import type { Output } from "../transport/output.ts";

/**
 * Acknowledges the open episode and publishes the updated alert where the notifier stage reads
 * alerts (the `alerts` topic, or the in-process queue), which records the acknowledgement without
 * notifying again. Null when no episode of `alertId` is open here.
 */
export async function acknowledgeAlert(
  pipeline: Pick<Pipeline, "tracker">,
  output: Output,
  alertsTopic: string,
  alertId: string,
  by: string,
): Promise<SensorAlert | null> {
  const alert = pipeline.tracker.acknowledge(alertId, by);
  if (alert === null) return null;
  await output.send([{ topic: alertsTopic, key: alertKey(alert), value: JSON.stringify(alert) }]);
  return alert;
}
