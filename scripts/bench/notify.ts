/**
 * Notification latency to a healthy receiver while another receiver hangs: the notifier stage
 * (`--role notifier`) reads alerts at a fixed rate and delivers each to two webhooks on 127.0.0.1,
 * one that answers at once and one that never answers. Latency runs from the alert's creation here
 * to its arrival at the healthy receiver; a receiver that holds up another shows in it.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { type Kafka, Partitioners } from "kafkajs";
import { percentile, stopProcess } from "./measure.ts";
import { memoryMiB } from "./proc.ts";

export interface NotifyLatencyResult {
  rate: number;
  seconds: number;
  sent: number;
  /** Alerts the healthy receiver got within the run and its drain. */
  delivered: number;
  /** Creation → arrival at the healthy receiver, ms. */
  healthy_ms: { p50: number; p99: number; p999: number; max: number };
  /** Requests the hanging receiver got (and held until its notifier gave each up). */
  hanging_requests: number;
  peak_rss_mib: number;
}

const now = () => Date.now();

function notifiersYaml(healthy: string, hanging: string): string {
  // Loopback receivers: allow_private_targets. Both receive every alert (no route, both default).
  return `notifiers:
  - name: healthy
    plugin: webhook
    options: { url: "${healthy}", allow_private_targets: true }
  - name: hanging
    plugin: webhook
    options: { url: "${hanging}", allow_private_targets: true }
routes: []
default_receivers: [healthy, hanging]
`;
}

export async function measureNotifyLatency(
  kafka: Kafka,
  opts: {
    alertsTopic: string;
    group: string;
    rate: number;
    seconds: number;
    warmupS: number;
    rulesDir: string;
    /** `deno run` and its flags, as `deno task start` has them. */
    startArgs: string[];
    root: string;
    env: Record<string, string>;
  },
): Promise<NotifyLatencyResult> {
  const created = new Map<string, number>();
  const latencies: number[] = [];
  let measuredFrom = Infinity;
  const healthy = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const arrived = now();
    const body = await req.json() as {
      alert?: { alert_id?: string };
      notifications?: { alert?: { alert_id?: string } }[];
    };
    const alerts = body.notifications?.map((n) => n.alert) ?? [body.alert];
    for (const a of alerts) {
      const at = created.get(a?.alert_id ?? "");
      if (at === undefined) continue;
      created.delete(a!.alert_id!);
      if (at >= measuredFrom) latencies.push(arrived - at);
    }
    return new Response(null, { status: 204 });
  });
  // Never answers: each request waits for the notifier's own timeout.
  const held = new Set<() => void>();
  const hanging = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    () =>
      new Promise<Response>((resolve) => {
        const release = () => resolve(new Response(null, { status: 503 }));
        held.add(release);
      }),
  );
  await Deno.writeTextFile(
    `${opts.rulesDir}/notifiers.yaml`,
    notifiersYaml(`http://127.0.0.1:${healthy.addr.port}/hook`, `http://127.0.0.1:${hanging.addr.port}/hook`),
  );
  const [run, ...flags] = opts.startArgs;
  const svc = new Deno.Command("deno", {
    args: [run!, ...flags, "main.ts", "--role", "notifier", "--rules", opts.rulesDir],
    cwd: opts.root,
    env: {
      ...opts.env,
      ALERTS_TOPIC: opts.alertsTopic,
      NOTIFIER_GROUP: opts.group,
      HTTP_PORT: "0",
      LOG_LEVEL: "error",
      NO_COLOR: "1",
    },
    stdin: "null",
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  let sent = 0;
  let peak = 0;
  try {
    await producer.connect();
    const admin = kafka.admin();
    await admin.connect();
    try {
      // The stage has joined once its group is stable with a member.
      for (let i = 0; i < 600; i++) {
        const d = await admin.describeGroups([opts.group]);
        if (d.groups[0]?.state === "Stable" && d.groups[0].members.length > 0) break;
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      await admin.disconnect();
    }
    const began = now();
    measuredFrom = began + opts.warmupS * 1000;
    const end = began + opts.seconds * 1000;
    while (now() < end) {
      const due = Math.floor(((now() - began) / 1000) * opts.rate);
      const messages = [];
      for (; sent < due; sent++) {
        const at = now();
        const alert = {
          alert_id: `bench-${sent}`,
          sensor_id: `s-${sent % 1000}`,
          sensor_type: "temperature",
          priority: "high",
          message: `Temperature at s-${sent % 1000}: value 40 °C above 35`,
          value: 40,
          threshold: 35,
          timestamp: new Date(at).toISOString(),
          acknowledged: false,
          rule_id: "bench-notify",
          state: "firing",
          labels: {},
        };
        created.set(alert.alert_id, at);
        messages.push({ key: `temperature:${alert.sensor_id}`, value: Buffer.from(JSON.stringify(alert)) });
      }
      if (messages.length > 0) await producer.send({ topic: opts.alertsTopic, acks: 1, messages });
      await new Promise((r) => setTimeout(r, 5));
    }
    // The last alerts: until the healthy receiver has them all, up to 10 s.
    const drainUntil = now() + 10_000;
    while (created.size > 0 && now() < drainUntil) await new Promise((r) => setTimeout(r, 50));
    peak = (await memoryMiB(svc.pid)).peak;
  } finally {
    await producer.disconnect();
    await stopProcess(svc, 5000);
    for (const release of held) release();
    await healthy.shutdown();
    await hanging.shutdown();
  }
  const s = [...latencies].sort((a, b) => a - b);
  const r = (v: number) => Math.round(v * 10) / 10;
  return {
    rate: opts.rate,
    seconds: opts.seconds,
    sent,
    delivered: latencies.length,
    healthy_ms: {
      p50: r(percentile(s, 50)),
      p99: r(percentile(s, 99)),
      p999: r(percentile(s, 99.9)),
      max: r(s.at(-1) ?? NaN),
    },
    hanging_requests: held.size,
    peak_rss_mib: peak,
  };
}
