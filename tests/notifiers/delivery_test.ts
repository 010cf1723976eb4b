/** The delivery lanes through the Dispatcher: breaker, time budget, in-flight window, against real receivers. */
import assert from "node:assert/strict";
import webhook from "../../plugins/webhook.ts";
import { Dispatcher, type NotifierInstance, type NotifierSet } from "../../src/notifiers/dispatcher.ts";
import { DEFAULT_RETRY_POLICY } from "../../src/notifiers/policy.ts";
import type { Notification } from "../../src/notifiers/plugin.ts";
import { DeliveryError } from "../../src/notifiers/plugin.ts";
import type { OutRecord } from "../../src/transport/output.ts";
import { alert, captureLogger, instance, notifierSet } from "../helpers/notifiers.ts";
import { type Answer, Receiver } from "../helpers/receiver.ts";

function dispatcher(set: () => NotifierSet) {
  const dlq: OutRecord[] = [];
  const { logger } = captureLogger();
  const d = new Dispatcher({
    notifiers: set,
    logger,
    deadLetter: (r) => Promise.resolve(void dlq.push(...r)),
    dlqTopic: "dlq",
    alertsTopic: "alerts",
  });
  return { d, dlq };
}

async function hook(url: string, name = "hook"): Promise<NotifierInstance> {
  const { logger } = captureLogger();
  return await instance(webhook, name, { url, timeout_ms: 300, allow_private_targets: true }, logger);
}

/** What a receiver answers → whether three such failures in a row open a breaker whose threshold is 3. */
const BREAKER_TABLE: [string, Answer | "refused", boolean][] = [
  ["400", 400, false],
  ["404", 404, false],
  ["413", 413, false],
  ["422", 422, false],
  ["429", 429, true],
  ["500", 500, true],
  ["503", 503, true],
  ["a hang past the timeout", "hang", true],
  ["a refused connection", "refused", true],
];

for (const [what, answer, opens] of BREAKER_TABLE) {
  Deno.test(`the circuit breaker ${opens ? "opens" : "stays closed"} on ${what}`, async () => {
    const receiver = await Receiver.start(answer === "refused" ? 200 : answer);
    const url = `${receiver.url}/hook`;
    if (answer === "refused") await receiver.down();
    try {
      const set = notifierSet([await hook(url)], {
        policy: { maxAttempts: 1, timeoutMs: 300 },
        breaker: { failureThreshold: 3, cooldownMs: 60_000 },
      });
      const { d, dlq } = dispatcher(() => set);
      for (let i = 0; i < 3; i++) await d.deliver([alert()]);
      assert.equal(dlq.length, 3);
      assert.equal(d.stats().hook!.breaker.state, opens ? "open" : "closed");
    } finally {
      await receiver.down();
    }
  });
}

Deno.test("over-long messages (400) do not hold up the healthy alerts that follow", async () => {
  const receiver = await Receiver.start((r) => r.body.includes("too-long") ? 400 : 200);
  try {
    const set = notifierSet([await hook(`${receiver.url}/hook`)], {
      breaker: { failureThreshold: 3, cooldownMs: 60_000 },
    });
    const { d, dlq } = dispatcher(() => set);
    await d.deliver([1, 2, 3].map((i) => alert({ alert_id: `too-long-${i}` })));
    await d.deliver([alert({ alert_id: "healthy" })]);
    assert.equal(dlq.length, 3);
    assert.equal(d.stats().hook!.delivered, 1);
    assert.equal(d.stats().hook!.breaker.opened, 0);
  } finally {
    await receiver.down();
  }
});

/** A plugin whose own code throws `bug` for the alerts it cannot handle, and delivers the others. */
function buggy(name: string, bug: () => never): { inst: NotifierInstance; sent: Notification[] } {
  const sent: Notification[] = [];
  const notify = (batch: Notification[]) => {
    for (const n of batch) if (n.alert.alert_id.startsWith("poison")) bug();
    sent.push(...batch);
    return Promise.resolve();
  };
  return { inst: { name, plugin: "buggy", notifier: { notify } }, sent };
}

Deno.test("a plugin's own TypeError (a bug) is a plugin failure: it opens no breaker over the alerts it can send", async () => {
  const { inst, sent } = buggy("buggy", () => {
    const location = (undefined as unknown as { name: string } | undefined)!;
    throw new TypeError(`Cannot read properties of undefined (reading 'name') ${location}`);
  });
  const set = notifierSet([inst], {
    // An open breaker holds the healthy alert until the budget is spent, then dead-letters it.
    policy: { maxAttempts: 1, giveUpAfterMs: 2000 },
    breaker: { failureThreshold: 3, cooldownMs: 60_000 },
  });
  const { d, dlq } = dispatcher(() => set);
  for (let i = 0; i < 5; i++) await d.deliver([alert({ alert_id: `poison-${i}` })]);
  await d.deliver([alert({ alert_id: "healthy" })]);
  assert.deepEqual(sent.map((n) => n.alert.alert_id), ["healthy"]);
  assert.equal(d.stats().buggy!.breaker.opened, 0);
  assert.equal(dlq.length, 5);
  for (const r of dlq) assert.equal(JSON.parse(r.value!).attempts.at(-1).reason, "plugin");
});

/** What a plugin's transport throws → the failure's reason (all of them open a breaker of threshold 1). */
const TRANSPORT_TABLE: [string, () => Error][] = [
  [
    "Deno's fetch",
    () => new TypeError("fetch failed", { cause: new Error("error sending request for url") }),
  ],
  ["Deno.connect refused", () => new Deno.errors.ConnectionRefused("Connection refused (os error 111)")],
  ["Deno.connect reset", () => new Deno.errors.ConnectionReset("Connection reset by peer (os error 104)")],
  [
    "node:net refused",
    () => Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:1"), { code: "ECONNREFUSED" }),
  ],
  [
    "a DNS failure of node:dns",
    () => Object.assign(new Error("getaddrinfo ENOTFOUND x"), { code: "ENOTFOUND" }),
  ],
];

for (const [what, error] of TRANSPORT_TABLE) {
  Deno.test(`a transport error of a plugin counts against its receiver: ${what}`, async () => {
    const { inst } = buggy("tcp", () => {
      throw error();
    });
    const set = notifierSet([inst], {
      policy: { maxAttempts: 1 },
      breaker: { failureThreshold: 1, cooldownMs: 60_000 },
    });
    const { d, dlq } = dispatcher(() => set);
    await d.deliver([alert({ alert_id: "poison" })]);
    assert.equal(JSON.parse(dlq[0]!.value!).attempts.at(-1).reason, "network");
    assert.equal(d.stats().tcp!.breaker.state, "open");
  });
}

Deno.test("with the default retry settings a failing receiver is retried until give_up_after, not fewer", async () => {
  const receiver = await Receiver.start(503);
  try {
    // The defaults, scaled down 100 times: backoff 5 ms..300 ms, budget 1.2 s, breaker cooldown 100 ms.
    const set = notifierSet([await hook(`${receiver.url}/hook`)], {
      policy: {
        ...DEFAULT_RETRY_POLICY,
        baseDelayMs: 5,
        maxDelayMs: 300,
        giveUpAfterMs: 1200,
        timeoutMs: 150,
      },
      breaker: { failureThreshold: 5, cooldownMs: 100 },
    });
    const { d, dlq } = dispatcher(() => set);
    const started = Date.now();
    await d.deliver([alert()]);
    const spent = Date.now() - started;
    assert.equal(dlq.length, 1);
    assert.ok(spent >= 1200, `dead-lettered after ${spent} ms, before its 1200 ms budget`);
    const rec = JSON.parse(dlq[0]!.value!);
    assert.ok(rec.attempts.length > 8, `${rec.attempts.length} tries`);
  } finally {
    await receiver.down();
  }
});

Deno.test("max_attempts still caps the tries within the time budget", async () => {
  const receiver = await Receiver.start(503);
  try {
    const set = notifierSet([await hook(`${receiver.url}/hook`)], {
      policy: { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 5, giveUpAfterMs: 60_000 },
    });
    const { d, dlq } = dispatcher(() => set);
    await d.deliver([alert()]);
    assert.equal(JSON.parse(dlq[0]!.value!).attempts.length, 3);
    assert.equal(receiver.received.length, 3);
  } finally {
    await receiver.down();
  }
});

Deno.test("a DLQ record refused by an open breaker names the failure that opened it", async () => {
  const receiver = await Receiver.start("hang");
  try {
    const set = notifierSet([await hook(`${receiver.url}/hook`)], {
      policy: { baseDelayMs: 1, maxDelayMs: 5, giveUpAfterMs: 600, timeoutMs: 50 },
      breaker: { failureThreshold: 2, cooldownMs: 60_000 },
    });
    const { d, dlq } = dispatcher(() => set);
    await d.deliver([alert()]);
    const rec = JSON.parse(dlq[0]!.value!);
    assert.match(rec.error, /Circuit breaker open after 2 failures in a row \(last: Delivery timed out\)/);
  } finally {
    await receiver.down();
  }
});

Deno.test("breaker settings changed by a reload apply to a notifier that already has state", async () => {
  const { inst } = scripted(() =>
    Promise.reject(new DeliveryError("503", { reason: "server", retryable: false, status: 503 }))
  );
  let set = notifierSet([inst], { breaker: { failureThreshold: 100, cooldownMs: 60_000 } });
  const { d } = dispatcher(() => set);
  await d.deliver([alert()]);
  set = { ...set, breaker: { failureThreshold: 2, cooldownMs: 60_000 } };
  await d.deliver([alert()]);
  assert.equal(d.stats().s!.breaker.state, "open");
});

function scripted(behave: (call: number) => Promise<void>) {
  const calls: Notification[][] = [];
  const inst: NotifierInstance = {
    name: "s",
    plugin: "scripted",
    notifier: { notify: (batch) => behave(calls.push(batch)) },
  };
  return { inst, calls };
}

const hops = async (k: number) => {
  for (let i = 0; i < k; i++) await Promise.resolve();
};

Deno.test("the in-flight window is never exceeded by a notification that arrives as another one ends", async () => {
  // The arrival lands at each microtask step of a completion in turn: one of them used to find the
  // window free while a waiter was already woken.
  for (let k = 0; k < 16; k++) {
    let running = 0;
    let peak = 0;
    const release: (() => void)[] = [];
    const { inst } = scripted(async () => {
      peak = Math.max(peak, ++running);
      await new Promise<void>((r) => release.push(r));
      running--;
    });
    const { d } = dispatcher(() => notifierSet([inst], { maxInFlight: 1 }));
    const first = d.deliver([alert()]);
    const second = d.deliver([alert()]);
    await hops(5);
    release.shift()!();
    await hops(k);
    const third = d.deliver([alert()]);
    let finished = 0;
    for (const p of [first, second, third]) p.then(() => finished++);
    for (let i = 0; i < 100 && finished < 3; i++) {
      for (const r of release.splice(0)) r();
      await new Promise((r) => setTimeout(r, 1));
    }
    assert.equal(finished, 3);
    assert.equal(peak, 1, `with the arrival ${k} microtasks after a completion`);
  }
});

Deno.test("a receiver outage shorter than give_up_after costs delay, not DLQ records", async () => {
  const receiver = await Receiver.start(200);
  const url = `${receiver.url}/hook`;
  await receiver.down();
  try {
    // The defaults' shape, scaled down: 8 tries with the breaker's cooldown used to end long before the budget.
    const set = notifierSet([await hook(url)], {
      policy: {
        ...DEFAULT_RETRY_POLICY,
        baseDelayMs: 5,
        maxDelayMs: 300,
        giveUpAfterMs: 10_000,
        timeoutMs: 300,
      },
      breaker: { failureThreshold: 5, cooldownMs: 100 },
    });
    const { d, dlq } = dispatcher(() => set);
    const run = d.deliver([alert()]);
    await new Promise((r) => setTimeout(r, 1000));
    await receiver.up();
    await run;
    assert.equal(dlq.length, 0);
    assert.equal(receiver.received.length, 1);
  } finally {
    await receiver.down();
  }
});

Deno.test("settled() waits for the tries in flight, not for a receiver that is down retrying", async () => {
  const slow = await Receiver.start({ status: 200, delayMs: 150 });
  const down = await Receiver.start(503);
  try {
    const set = notifierSet(
      [await hook(`${slow.url}/hook`, "slow"), await hook(`${down.url}/hook`, "down")],
      {
        policy: { baseDelayMs: 60_000, maxDelayMs: 60_000, giveUpAfterMs: 600_000 },
      },
    );
    const { d } = dispatcher(() => set);
    let delivered = false;
    const done = d.submit([alert()]).done.then(() => delivered = true, () => {});
    await waitUntil(() => slow.received.length === 1 && down.received.length === 1);
    const started = performance.now();
    await d.settled();
    const took = performance.now() - started;
    assert.equal(d.stats().slow!.delivered, 1, "the try in flight to the slow receiver ended first");
    assert.equal(d.unfinished("down"), 1, "the receiver that is down still retries");
    assert.ok(took < 5000, `settled after ${Math.round(took)} ms`);
    assert.equal(delivered, false);
    await d.close();
    await done;
  } finally {
    await slow.down();
    await down.down();
  }
});

async function waitUntil(ok: () => boolean): Promise<void> {
  while (!ok()) await new Promise((r) => setTimeout(r, 10));
}
