/** A real HTTP receiver on 127.0.0.1 for notifier tests: records every request, answers as told. */

export interface Received {
  path: string;
  headers: Headers;
  body: string;
}

/** How to answer: a status (with headers), "hang" (never answer), or a function of the request. */
export type Answer = number | { status: number; headers?: Record<string, string>; delayMs?: number } | "hang";

export class Receiver {
  readonly received: Received[] = [];
  answer: Answer | ((r: Received, i: number) => Answer) = 200;
  #server: Deno.HttpServer<Deno.NetAddr> | null = null;
  #port = 0;
  #hangs = new Set<() => void>();

  static async start(answer: Receiver["answer"] = 200): Promise<Receiver> {
    const r = new Receiver();
    r.answer = answer;
    await r.up();
    return r;
  }

  get url(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  /** Listens (again, on the same port after `down`). */
  up(): Promise<void> {
    this.#server = Deno.serve(
      { hostname: "127.0.0.1", port: this.#port, onListen: () => {} },
      async (req) => {
        const rec: Received = {
          path: new URL(req.url).pathname,
          headers: req.headers,
          body: await req.text(),
        };
        this.received.push(rec);
        const a = typeof this.answer === "function"
          ? this.answer(rec, this.received.length - 1)
          : this.answer;
        if (a === "hang") {
          await new Promise<void>((resolve) => {
            const done = () => {
              this.#hangs.delete(done);
              resolve();
            };
            this.#hangs.add(done);
            req.signal.addEventListener("abort", done, { once: true });
          });
          return new Response("late", { status: 200 });
        }
        const { status, headers, delayMs } = typeof a === "number"
          ? { status: a, headers: {}, delayMs: 0 }
          : a;
        if (delayMs) await new Promise((r) => setTimeout(r, delayMs));
        const body = status >= 300 && status < 400 || status === 204 ? null : `answer ${status}`;
        return new Response(body, { status, headers: headers ?? {} });
      },
    );
    this.#port = this.#server.addr.port;
    return Promise.resolve();
  }

  /** Requests waiting on a "hang" answer right now. */
  get hanging(): number {
    return this.#hangs.size;
  }

  /** Answers every hanging request (200) and keeps listening. */
  release(): void {
    for (const h of this.#hangs) h();
    this.#hangs.clear();
  }

  /** Stops listening: connections are refused until `up`. */
  async down(): Promise<void> {
    for (const h of this.#hangs) h();
    this.#hangs.clear();
    await this.#server?.shutdown();
    this.#server = null;
  }
}
