/**
 * `/api/silences` of the embedded service (no broker): writes need the token, a malformed body gets
 * 400 naming the field, a silence is created, listed, extended and expired, shows on the alerts it
 * matches, and is read back from the local file after a restart.
 */
import assert from "node:assert/strict";
import { waitFor } from "../helpers/kafka.ts";
import { scrape } from "../helpers/metrics.ts";
import { httpUrl, startService } from "../helpers/service.ts";

const RULES = `rules:
  - id: temperature-out-of-range
    sensor_type: temperature
    threshold: { min: 10, max: 35 }
    priority: high
`;
const TOKEN = "tok-5e1b7c9a3d2f8e60";
const inAnHour = () => new Date(Date.now() + 3600_000).toISOString();
const good = () => ({
  matchers: [{ name: "sensor_id", value: "temp-00*" }, {
    name: "rule_id",
    value: "temperature-out-of-range",
  }],
  ends_at: inAnHour(),
  created_by: "tester",
  comment: "recalibrating the temperature sensors",
});

Deno.test("/api/silences: auth, 400 naming the field, create, list, extend, expire, kept across a restart", async (t) => {
  await Deno.mkdir("tests/artifacts", { recursive: true });
  const dir = await Deno.makeTempDir({ dir: "tests/artifacts", prefix: "silences-api-" });
  await Deno.writeTextFile(`${dir}/rules.yaml`, RULES);
  const env = { KAFKA_BROKERS: "", API_TOKEN: TOKEN, RULES_DIR: dir, SILENCES_FILE: `${dir}/silences.json` };
  const args = ["--rate", "20", "--anomaly", "1", "--seed", "5"];
  let service = startService(env, args);
  try {
    let base = await httpUrl(service);
    const call = async (
      method: string,
      path: string,
      body?: unknown,
      headers: Record<string, string> = {},
    ) => {
      const res = await fetch(`${base}${path}`, {
        method,
        headers: { "content-type": "application/json", authorization: `Bearer ${TOKEN}`, ...headers },
        ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }),
      });
      return { status: res.status, body: await res.json() };
    };
    await waitFor("the service to answer", async () => (await fetch(`${base}/api/silences`)).status === 200);

    await t.step(
      "writes need the bearer token, JSON and the same origin, as an acknowledgement does",
      async () => {
        assert.equal((await call("POST", "/api/silences", good(), { authorization: "" })).status, 401);
        assert.equal(
          (await call("POST", "/api/silences", good(), { authorization: "Bearer wrong" })).status,
          401,
        );
        assert.equal(
          (await call("POST", "/api/silences", good(), { "content-type": "text/plain" })).status,
          415,
        );
        assert.equal(
          (await call("POST", "/api/silences", good(), { origin: "http://evil.example" })).status,
          403,
        );
        assert.equal((await call("DELETE", "/api/silences/x", undefined, { authorization: "" })).status, 401);
        const { body } = await call("GET", "/api/silences");
        assert.deepEqual(body, { silences: [] }, "nothing was written");
      },
    );

    await t.step("a malformed body gets 400 naming the field", async () => {
      const cases: [unknown, RegExp][] = [
        ["{not json", /Body is not JSON/],
        [{ ...good(), ends_at: undefined }, /Field "ends_at"/],
        [{ ...good(), ends_at: "tomorrow" }, /Field "ends_at"/],
        [
          { ...good(), ends_at: "2020-01-01T00:00:00Z" },
          /Field "ends_at": "2020-01-01T00:00:00Z" is not in the future/,
        ],
        [{ ...good(), matchers: [] }, /Field "matchers"/],
        [{ ...good(), matchers: [{ name: "sensor", value: "x" }] }, /Field "matchers\.0\.name"/],
        [
          { ...good(), matchers: [{ name: "sensor_id", value: "(x", is_regex: true }] },
          /Field "matchers\.0\.value"/,
        ],
        [
          { ...good(), matchers: [{ name: "sensor_id", value: "x".repeat(300) }] },
          /Field "matchers\.0\.value"/,
        ],
        [{ ...good(), matchers: [{ name: "sensor_id", value: 5 }] }, /Field "matchers\.0\.value"/],
        [{ ...good(), matchers: [{ name: "sensor_id", value: ".*", is_regex: true }] }, /Field "matchers"/],
        [{ ...good(), created_by: " " }, /Field "created_by"/],
        [{ ...good(), comment: undefined }, /Field "comment"/],
        [{ ...good(), surprise: 1 }, /surprise/],
      ];
      for (const [body, expected] of cases) {
        const res = await call("POST", "/api/silences", body);
        assert.equal(res.status, 400, JSON.stringify(body));
        assert.match(res.body.error, expected, JSON.stringify(body));
      }
      assert.deepEqual((await call("GET", "/api/silences")).body, { silences: [] });
    });

    let id = "";
    await t.step(
      "a silence is created (201), listed, shown on the alerts it matches, extended and expired",
      async () => {
        const created = await call("POST", "/api/silences", good());
        assert.equal(created.status, 201);
        const s = created.body.silence;
        id = s.id;
        assert.equal(s.status, "active");
        assert.equal(s.created_by, "tester");
        assert.deepEqual(s.matchers[0], {
          name: "sensor_id",
          value: "temp-00*",
          is_regex: false,
          is_equal: true,
        });
        const listed = (await call("GET", "/api/silences")).body.silences;
        assert.deepEqual(listed.map((x: { id: string }) => x.id), [id]);
        assert.equal((await call("GET", `/api/silences/${id}`)).body.silence.comment, good().comment);

        const alerts = await waitFor("the temperature alerts", async () => {
          const { body } = await call("GET", "/api/alerts");
          const temp = body.active.filter((a: { sensor_id: string }) => a.sensor_id.startsWith("temp-"));
          return temp.length === 2 && body.active;
        });
        for (const a of alerts) assert.deepEqual(a.silenced_by, a.sensor_id.startsWith("temp-") ? [id] : []);
        assert.equal((await scrape(base)).value("sensor_silences_active"), 1);

        const later = new Date(Date.now() + 7200_000).toISOString();
        const extended = await call("PUT", `/api/silences/${id}`, { ends_at: later });
        assert.equal(extended.status, 200);
        assert.equal(extended.body.silence.ends_at, later);
        assert.equal((await call("PUT", `/api/silences/${id}`, { ends_at: "soon" })).status, 400);
        assert.equal((await call("PUT", "/api/silences/nope", { ends_at: later })).status, 404);
      },
    );

    await t.step(
      "a restart reads the silences back from the file; an expired one stays listed as expired",
      async () => {
        const second = await call("POST", "/api/silences", { ...good(), comment: "to expire" });
        const expired = await call("DELETE", `/api/silences/${second.body.silence.id}`);
        assert.equal(expired.status, 200);
        assert.equal(expired.body.silence.status, "expired");
        assert.equal((await call("DELETE", "/api/silences/nope")).status, 404);
        assert.equal((await service.stop()).code, 0);
        service = startService(env, args);
        base = await httpUrl(service);
        const listed = await waitFor("the restarted service to list the silences", async () => {
          const res = await fetch(`${base}/api/silences`);
          return res.status === 200 && (await res.json()).silences;
        });
        assert.deepEqual(
          listed.map((s: { id: string; status: string }) => `${s.id} ${s.status}`),
          [`${id} active`, `${second.body.silence.id} expired`],
        );
      },
    );
  } finally {
    assert.equal((await service.stop()).code, 0, service.stderr().slice(-2000));
  }
});
