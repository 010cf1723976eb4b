import assert from "node:assert/strict";
import type { SensorAlert } from "../../src/contract/schemas.ts";
import type { DecodedEvent } from "../../src/decode/decode.ts";
import { LiveFeed, type LiveMessage, sensorMessages } from "../../src/http/live.ts";

function decoded(sensor_id: string): DecodedEvent {
  return { event: { sensor_id } as DecodedEvent["event"], time: 0, key: "" };
}

function alert(i: number): SensorAlert {
  return { alert_id: `a${i}`, rule_id: "r", priority: "high", state: "firing" } as SensorAlert;
}

/** Reads whole SSE messages already queued on the stream, without waiting for more. */
async function drain(reader: ReadableStreamDefaultReader<Uint8Array>, chunks: number): Promise<string> {
  let text = "";
  for (let i = 0; i < chunks; i++) {
    const { value, done } = await reader.read();
    if (done) break;
    text += new TextDecoder().decode(value);
  }
  return text;
}

Deno.test("LiveFeed sends one snapshot of the sensors that changed, however many events came", async () => {
  const feed = new LiveFeed({ flushMs: 60_000 });
  const seen: string[][] = [];
  feed.snapshot = (dirty): LiveMessage[] => {
    seen.push([...dirty].sort());
    return [{ event: "sensors", data: [...dirty].sort() }];
  };
  const reader = feed.subscribe([{ event: "hello", data: {} }]).getReader();
  for (let i = 0; i < 100_000; i++) feed.onEvent(decoded(i % 2 === 0 ? "temp-001" : "hum-001"));
  feed.flush();
  const text = await drain(reader, 2);
  assert.deepEqual(seen, [["hum-001", "temp-001"]]);
  assert.equal(text, 'event: hello\ndata: {}\n\nevent: sensors\ndata: ["hum-001","temp-001"]\n\n');
  feed.flush();
  assert.deepEqual(seen[1], [], "nothing changed since the last flush");
  await reader.cancel();
  assert.equal(feed.clients, 0);
});

Deno.test("LiveFeed caps the alerts of one flush and counts the rest as dropped", async () => {
  const feed = new LiveFeed({ flushMs: 60_000, maxAlertsPerFlush: 3, recentAlerts: 5 });
  const reader = feed.subscribe([]).getReader();
  for (let i = 0; i < 10; i++) feed.onAlert(alert(i));
  feed.flush();
  const text = await drain(reader, 1);
  const data = JSON.parse(text.split("data: ")[1]!);
  assert.deepEqual(data.alerts.map((a: SensorAlert) => a.alert_id), ["a7", "a8", "a9"]);
  assert.equal(data.dropped, 7);
  assert.deepEqual(feed.recentAlerts().map((a) => a.alert_id), ["a5", "a6", "a7", "a8", "a9"]);
  assert.equal(feed.alertCounts.get("r\u0000high\u0000firing"), 10);
  feed.close();
});

Deno.test("LiveFeed does nothing per event while no dashboard is connected", () => {
  const feed = new LiveFeed();
  let snapshots = 0;
  feed.snapshot = () => {
    snapshots++;
    return [];
  };
  for (let i = 0; i < 10; i++) feed.onEvent(decoded("temp-001"));
  feed.flush();
  assert.equal(snapshots, 0);
});

Deno.test("LiveFeed sends at most maxSensorsPerFlush sensors a flush, the rest later, those with a new alert first", async () => {
  const feed = new LiveFeed({ flushMs: 60_000, maxSensorsPerFlush: 3 });
  const seen: string[][] = [];
  feed.snapshot = (dirty): LiveMessage[] => {
    seen.push([...dirty]);
    return [];
  };
  const reader = feed.subscribe([]).getReader();
  for (let i = 0; i < 7; i++) feed.onEvent(decoded(`s${i}`));
  feed.onAlert({ ...alert(1), sensor_id: "s5" });
  for (let i = 0; i < 4; i++) feed.flush();
  assert.deepEqual(seen, [["s5", "s0", "s1"], ["s2", "s3", "s4"], ["s6"], []]);
  await reader.cancel();
});

Deno.test("sensorMessages() splits a fleet's sensors into messages of at most the given size, one if none", () => {
  const views = Array.from({ length: 2500 }, (_, i) => ({ sensor_id: `s${i}` }));
  const messages = sensorMessages(views, 1000);
  assert.deepEqual(messages.map((m) => m.event), ["sensors", "sensors", "sensors"]);
  assert.deepEqual(messages.map((m) => (m.data as unknown[]).length), [1000, 1000, 500]);
  assert.deepEqual(messages.flatMap((m) => m.data as unknown[]), views);
  assert.deepEqual(sensorMessages([], 1000), [{ event: "sensors", data: [] }]);
});

/**
 * The chunks already queued on a stream, without waiting for more: a queued chunk is handed over in
 * a microtask, so a read still pending after a timer (a macrotask) means the queue is empty. That
 * read is returned, to be awaited for the next chunk.
 */
async function queued(
  reader: ReadableStreamDefaultReader<Uint8Array>,
): Promise<{ chunks: Uint8Array[]; next: Promise<ReadableStreamReadResult<Uint8Array>> }> {
  const chunks: Uint8Array[] = [];
  for (let i = 0; i < 100_000; i++) {
    const next = reader.read();
    const got = await Promise.race([
      next,
      new Promise<null>((resolve) => setTimeout(() => resolve(null), 0)),
    ]);
    if (got === null) return { chunks, next };
    if (got.done) break;
    chunks.push(got.value);
  }
  return { chunks, next: reader.read() };
}

Deno.test("LiveFeed holds at most about 1 MiB of flushes for a client that stopped reading", async () => {
  const MiB = 1024 * 1024;
  const feed = new LiveFeed({ flushMs: 60_000 });
  // Each flush: one `sensors` message of ~256 KB, tagged with its flush number.
  let version = 0;
  const filler = "x".repeat(256 * 1024);
  feed.snapshot = () => [{ event: "sensors", data: { version, filler } }];
  // An initial picture of 2 MB, in messages of 256 KB, as a fleet of a few thousand sensors gives.
  const initial: LiveMessage[] = Array.from({ length: 8 }, () => ({ event: "sensors", data: { filler } }));
  const stalled = feed.subscribe(initial).getReader();
  const reading = feed.subscribe(initial).getReader();
  const first = await queued(reading);
  assert.equal(first.chunks.length, initial.length);
  let readingNext = first.next;
  const versionOf = (chunk: Uint8Array) =>
    JSON.parse(new TextDecoder().decode(chunk).split("data: ")[1]!).version as number;
  for (version = 1; version <= 200; version++) {
    feed.onEvent(decoded("s1"));
    feed.flush();
    const got = await readingNext;
    assert.ok(!got.done);
    assert.equal(versionOf(got.value), version, "a reading client gets every flush");
    readingNext = reading.read();
  }
  const { chunks, next } = await queued(stalled);
  const flushes = chunks.slice(initial.length);
  const bytes = flushes.reduce((n, c) => n + c.byteLength, 0);
  const chunk = flushes[0]?.byteLength ?? 0;
  // The cap, plus the one chunk that may cross it (a client with room gets the whole flush).
  assert.ok(
    bytes <= MiB + chunk,
    `${flushes.length} flushes, ${(bytes / MiB).toFixed(1)} MiB queued for a client that reads nothing`,
  );
  // Once it reads again, the next flush reaches it.
  version = 201;
  feed.onEvent(decoded("s1"));
  feed.flush();
  const caught = await next;
  assert.ok(!caught.done);
  assert.equal(versionOf(caught.value), 201);
  await readingNext.then(() => {}, () => {});
  feed.close();
});
