/**
 * kafkajs 2.2.4's request queue without its idle timer loop. After every response a connection checks
 * its queue of requests held back (by a broker's throttle or the in-flight limit) and schedules the
 * next check; with nothing held the delay is negative (`throttledUntil` is -1 until a throttle), so
 * the timer fires at once and re-arms itself: ~1,000 wake-ups a second per connection, for ever
 * (tulios/kafkajs#1556, #1704; the release has no fix). Every connection of the process does it: the
 * consumer's, the producers' (one per input partition under exactly-once), the followers'. Measured on
 * the bench's traffic (150,000 events preloaded, one engine thread, shared 2-core machine, pairs run
 * alternately): idle after catching up, at-least-once 4.8-5.8% of a core before, 1.8-2.0% after,
 * exactly-once 8.2-10.0% before, 2.8-3.8% after; while catching up, exactly-once 23.6 / 26.2 µs CPU
 * per event before, 22.0 / 24.9 after. Here a check is scheduled only while a request is held: a request
 * pushed later schedules its own, and a response that frees a slot checks the queue itself.
 *
 * @module
 */
import RequestQueue from "kafkajs/src/network/requestQueue/index.js";

/** kafkajs's interval between checks while requests are held and no throttle says when to retry. */
const CHECK_PENDING_REQUESTS_INTERVAL_MS = 10;

interface QueueState {
  pending: unknown[];
  throttledUntil: number;
  throttleCheckTimeoutId: ReturnType<typeof setTimeout> | null;
  checkPendingRequests(): void;
}

RequestQueue.prototype.scheduleCheckPendingRequests = function (this: QueueState): void {
  if (this.throttleCheckTimeoutId || this.pending.length === 0) return;
  const untilUnthrottled = this.throttledUntil - Date.now();
  this.throttleCheckTimeoutId = setTimeout(() => {
    this.throttleCheckTimeoutId = null;
    this.checkPendingRequests();
  }, untilUnthrottled > 0 ? untilUnthrottled : CHECK_PENDING_REQUESTS_INTERVAL_MS);
};
