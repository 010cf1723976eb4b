/**
 * The HTTP server against hostile clients, as an attacker would try it on the real service (embedded
 * simulator, no token, the default): web pages that would silence an alert, clients that would hold
 * the server's memory or connections, and requests that used to make it fail.
 */
import assert from "node:assert/strict";
import type { SensorAlert } from "../../src/contract/schemas.ts";
import { waitFor } from "../helpers/kafka.ts";
import { httpUrl, type RunningService, startService } from "../helpers/service.ts";

const MAX_STREAMS = 2;
const MAX_CONNECTIONS = 16;
const REQUEST_TIMEOUT_MS = 1000;
const PROXY_HOST = "sensors.proxy.test";
const encoder = new TextEncoder();

/** Resolves to `fallback` when `promise` has not settled within `ms`: every wait here is bounded. */
function within<T, F>(promise: Promise<T>, ms: number, fallback: F): Promise<T | F> {
  let timer: ReturnType<typeof setTimeout>;
  return Promise.race([
    promise,
    new Promise<F>((resolve) => timer = setTimeout(() => resolve(fallback), ms)),
  ]).finally(() => clearTimeout(timer));
}

/** What the server sent on a raw connection, and whether it closed the connection. */
interface Received {
  text: string;
  closed: boolean;
}

/** Reads until the server closes the connection, or `ms` pass. */
async function receive(conn: Deno.Conn, ms: number): Promise<Received> {
  const chunks: Uint8Array[] = [];
  const read = (async () => {
    const buf = new Uint8Array(64 * 1024);
    for (;;) {
      const n = await conn.read(buf).catch(() => null);
      if (n === null) return true;
      chunks.push(buf.slice(0, n));
    }
  })();
  const closed = await within(read, ms, false);
  const text = new TextDecoder().decode(
    chunks.reduce((all, c) => new Uint8Array([...all, ...c]), new Uint8Array()),
  );
  return { text, closed };
}

/** One raw HTTP/1.1 exchange, so the test controls `Host` and every byte a browser would not send. */
async function raw(base: string, head: string, body = ""): Promise<Received> {
  const { hostname, port } = new URL(base);
  const conn = await Deno.connect({ hostname, port: Number(port) });
  try {
    await writeAll(conn, encoder.encode(`${head.trim().replaceAll("\n", "\r\n")}\r\n\r\n${body}`));
    return await receive(conn, 20_000);
  } finally {
    conn.close();
  }
}

async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  for (let at = 0; at < data.length;) at += await conn.write(data.subarray(at));
}

const status = (r: Received) => Number(/^HTTP\/1\.1 (\d{3})/.exec(r.text)?.[1] ?? 0);

async function openAlert(base: string): Promise<SensorAlert> {
  return await waitFor("an open alert", async () => {
    const body = await (await fetch(`${base}/api/alerts`)).json();
    return (body.active as SensorAlert[] | undefined)?.find((a) => !a.acknowledged) ?? false;
  });
}

async function acknowledged(base: string, id: string): Promise<boolean> {
  const body = await (await fetch(`${base}/api/alerts?state=acknowledged`)).json();
  return (body.active as SensorAlert[]).some((a) => a.alert_id === id);
}

Deno.test("the HTTP server holds against hostile clients", async (t) => {
  // Every event out of range: alerts stay open until acknowledged, so an attack that gets through
  // really silences one.
  const service: RunningService = startService({
    KAFKA_BROKERS: "",
    HTTP_MAX_STREAMS: String(MAX_STREAMS),
    HTTP_MAX_CONNECTIONS: String(MAX_CONNECTIONS),
    HTTP_REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
    HTTP_ALLOWED_HOSTS: PROXY_HOST,
  }, ["--rate", "20", "--anomaly", "1", "--seed", "5"]);
  try {
    const base = await httpUrl(service);
    const { host } = new URL(base);
    const target = await openAlert(base);
    const ackPath = `/api/alerts/${encodeURIComponent(target.alert_id)}/ack`;
    const ack = (headers: Record<string, string>, body = '{"by":"attacker"}') =>
      fetch(`${base}${ackPath}`, { method: "POST", headers, body }).then(async (r) => ({
        status: r.status,
        error: (await r.json()).error as string | undefined,
      }));

    await t.step("a write from an opaque origin (Origin: null) is refused", async () => {
      const res = await ack({ origin: "null", "content-type": "application/json" });
      assert.equal(res.status, 403);
      assert.match(res.error ?? "", /Origin "null"/);
      assert.equal(await acknowledged(base, target.alert_id), false);
    });

    await t.step("a request through DNS rebinding (a foreign Host) is refused, reads too", async () => {
      const evil = `rebind.evil.example:${new URL(base).port}`;
      const write = await raw(
        base,
        `POST ${ackPath} HTTP/1.1
Host: ${evil}
Origin: http://${evil}
Content-Type: application/json
Content-Length: 2
Connection: close`,
        "{}",
      );
      assert.equal(status(write), 421, write.text);
      assert.match(write.text, /rebind\.evil\.example/);
      const read = await raw(base, `GET /api/alerts HTTP/1.1\nHost: ${evil}\nConnection: close`);
      assert.equal(status(read), 421, read.text);
      assert.equal(await acknowledged(base, target.alert_id), false);
      // The names it does answer to: its own address, loopback names, HTTP_ALLOWED_HOSTS.
      for (const name of [host, `localhost:${new URL(base).port}`, PROXY_HOST, "127.0.0.1"]) {
        const ok = await raw(base, `GET /healthz HTTP/1.1\nHost: ${name}\nConnection: close`);
        assert.equal(status(ok), 200, `Host ${name}: ${ok.text}`);
      }
    });

    await t.step("a write without Content-Type: application/json is refused", async () => {
      assert.equal((await ack({})).status, 415);
      const plain = await ack({ "content-type": "text/plain" });
      assert.equal(plain.status, 415);
      assert.match(plain.error ?? "", /application\/json/);
      assert.equal(await acknowledged(base, target.alert_id), false);
    });

    await t.step("a request body beyond the limit gets 413 and the server reads no further", async () => {
      const { hostname, port } = new URL(base);
      const framings = [
        `Content-Length: ${300 * 1024 * 1024}`,
        // No length announced: the server must count what arrives.
        "Transfer-Encoding: chunked",
      ];
      for (const framing of framings) {
        const conn = await Deno.connect({ hostname, port: Number(port) });
        try {
          await writeAll(
            conn,
            encoder.encode(
              `POST ${ackPath} HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\n` +
                `${framing}\r\n\r\n`,
            ),
          );
          const answer = receive(conn, 30_000);
          const piece = new Uint8Array(256 * 1024).fill(0x20);
          const chunk = framing.startsWith("Transfer")
            ? new Uint8Array([...encoder.encode(`${piece.length.toString(16)}\r\n`), ...piece, 13, 10])
            : piece;
          // Up to 64 MiB: a server that buffers takes it all and waits for the rest.
          let sent = 0;
          let refused = false;
          while (sent < 64 * 1024 * 1024) {
            const wrote = await within(writeAll(conn, chunk).then(() => true, () => false), 10_000, null);
            if (wrote !== true) {
              refused = true;
              break;
            }
            sent += chunk.length;
          }
          const received = await answer;
          assert.equal(status(received), 413, `${framing}: ${received.text.slice(0, 300)}`);
          assert.ok(received.closed, `${framing}: the server closes the connection`);
          assert.ok(refused, `${framing}: the server took all ${sent} bytes`);
        } finally {
          try {
            conn.close();
          } catch { /* closed by the failed write */ }
        }
      }
      assert.equal(await acknowledged(base, target.alert_id), false);
    });

    await t.step("a client that asks before sending a large body is told 413, not to continue", async () => {
      const answer = await raw(
        base,
        `POST ${ackPath} HTTP/1.1
Host: ${host}
Content-Type: application/json
Content-Length: ${300 * 1024 * 1024}
Expect: 100-continue`,
      );
      assert.equal(status(answer), 413, answer.text.slice(0, 300));
      assert.ok(answer.closed);
    });

    await t.step(`live streams beyond HTTP_MAX_STREAMS (${MAX_STREAMS}) get 503`, async () => {
      const streams: Response[] = [];
      try {
        for (let i = 0; i < MAX_STREAMS; i++) {
          const res = await fetch(`${base}/api/stream`);
          streams.push(res);
          assert.equal(res.status, 200);
        }
        const beyond = await fetch(`${base}/api/stream`);
        assert.equal(beyond.status, 503);
        assert.ok(beyond.headers.get("retry-after"));
        assert.match((await beyond.json()).error, /HTTP_MAX_STREAMS/);
      } finally {
        for (const s of streams) await s.body?.cancel();
      }
      // A closed stream frees its place.
      await waitFor("a stream place to free up", async () => {
        const res = await fetch(`${base}/api/stream`);
        await res.body?.cancel();
        return res.status === 200;
      });
    });

    await t.step("a client that never finishes its headers is disconnected", async () => {
      const { hostname, port } = new URL(base);
      const conn = await Deno.connect({ hostname, port: Number(port) });
      try {
        await writeAll(conn, encoder.encode(`GET /api/alerts HTTP/1.1\r\nHost: ${host}\r\nX-Slow: 1`));
        // Bounded wait, far above the configured timeout: the assertion is that it closes at all.
        const received = await receive(conn, REQUEST_TIMEOUT_MS + 20_000);
        assert.ok(received.closed, `still open; received ${JSON.stringify(received.text)}`);
        assert.ok(received.text === "" || status(received) === 408, received.text);
      } finally {
        conn.close();
      }
    });

    await t.step(
      `connections beyond HTTP_MAX_CONNECTIONS (${MAX_CONNECTIONS}): as many are closed unanswered, the cap holds`,
      async () => {
        const { hostname, port } = new URL(base);
        const conns: Deno.Conn[] = [];
        try {
          for (let i = 0; i < 2 * MAX_CONNECTIONS; i++) {
            conns.push(await Deno.connect({ hostname, port: Number(port) }));
          }
          // Each past the cap takes the slot of the oldest idle one, closed without a word; the last
          // MAX_CONNECTIONS time out (408).
          const received = await Promise.all(conns.map((c) => receive(c, REQUEST_TIMEOUT_MS + 20_000)));
          assert.ok(received.every((r) => r.closed), "every connection is closed");
          const unanswered = received.filter((r) => r.text === "").length;
          assert.ok(unanswered >= MAX_CONNECTIONS, `${unanswered} closed unanswered`);
          assert.ok(received.every((r) => r.text === "" || status(r) === 408));
        } finally {
          for (const c of conns) c.close();
        }
      },
    );

    await t.step("a malformed alert id in the path answers 400", async () => {
      const res = await fetch(`${base}/api/alerts/%ZZ/ack`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: "{}",
      });
      assert.equal(res.status, 400);
      assert.match((await res.json()).error, /%ZZ/);
    });

    await t.step("every answer carries the security headers, the dashboard a CSP for itself", async () => {
      for (const path of ["/", "/dashboard.js", "/api/alerts", "/healthz", "/no-such-page"]) {
        const res = await fetch(`${base}${path}`);
        await res.body?.cancel();
        assert.equal(res.headers.get("x-frame-options"), "DENY", path);
        assert.equal(res.headers.get("x-content-type-options"), "nosniff", path);
        assert.equal(res.headers.get("referrer-policy"), "no-referrer", path);
        const csp = res.headers.get("content-security-policy") ?? "";
        assert.match(csp, /frame-ancestors 'none'/, path);
        assert.match(csp, /default-src 'none'/, path);
        assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/, path);
      }
    });

    await t.step("HEAD answers for the GET routes, without a body", async () => {
      for (const path of ["/", "/dashboard.js", "/healthz", "/api/alerts", "/metrics"]) {
        const res = await fetch(`${base}${path}`, { method: "HEAD" });
        assert.equal(res.status, 200, path);
        assert.equal(await res.text(), "", path);
      }
      const stream = await fetch(`${base}/api/stream`, { method: "HEAD" });
      assert.equal(stream.status, 200);
      assert.equal(stream.headers.get("content-type"), "text/event-stream; charset=utf-8");
      assert.equal(await stream.text(), "");
    });

    await t.step("a same-origin JSON write still acknowledges", async () => {
      const ok = await ack({ origin: base, "content-type": "application/json" }, '{"by":"operator"}');
      assert.equal(ok.status, 200, ok.error);
      assert.equal(await acknowledged(base, target.alert_id), true);
    });
  } finally {
    const exit = await service.stop();
    assert.equal(exit.code, 0, service.stderr().slice(-2000));
  }
});

Deno.test("the service refuses an API_TOKEN shorter than 16 characters, in one line", async () => {
  const service = startService({ KAFKA_BROKERS: "", HTTP_HOST: "0.0.0.0", API_TOKEN: "x" });
  // Bounded: before the fix the service started and served.
  const exited = await within(service.child.status, 30_000, null);
  await service.stop();
  assert.equal(exited?.code, 2, service.stderr().slice(-2000));
  const first = service.stdout().split("\n")[0] ?? "";
  assert.match(first, /^API_TOKEN must be at least 16 characters long \(it has 1\)/);
  assert.ok(!service.stdout().includes('"x"'), "the token's value is not printed");
});
