/** The HTTP server in process, on a free loopback port, without a token and quiet: `over` says what a test is about. */
import { type HttpServerOptions, startHttpServer } from "../../src/http/server.ts";
import { LiveFeed } from "../../src/http/live.ts";
import { createLogger } from "../../src/log.ts";

export function testHttpServer(over: Partial<HttpServerOptions> = {}): ReturnType<typeof startHttpServer> {
  return startHttpServer({
    host: "127.0.0.1",
    port: 0,
    token: null,
    logger: createLogger({ level: "error" }),
    live: new LiveFeed(),
    alertsTopic: "alerts",
    mode: "kafka",
    ...over,
  });
}
