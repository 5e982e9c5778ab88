// What a master that does not lead (STORE=etcd, another master holds the
// leader key) serves on its ports until it wins:
// - web port: GET /healthz (200, `leader: false`), GET /metrics (same access
//   rule as the leader's), the page's own files and the Socket.IO client script
//   (so a page loaded here shows "reconnecting" and retries); every other path
//   — the REST API and Socket.IO — 503 with Retry-After and who leads. Every
//   connection is closed after its answer, so behind a VIP the client's next
//   one may reach the leader.
// - gRPC port: every call UNAVAILABLE (workers retry it, docs/protocol.md rule
//   5), and connections are closed after a second, so a worker's channel
//   reconnects and, behind a VIP, reaches the leader.
// It holds no queue: it never connects to MQTT and opens no store.
import * as grpc from "@grpc/grpc-js";
import { readFileSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { dirname, join } from "node:path";
import { bearerToken, readCookie, SESSION_COOKIE, WebAuth } from "./auth";
import { loadServiceDefinition, status } from "./grpcServer";
import { sendJson as send, type HealthFacts, type HealthReport, type StaticFile, type WebAuthOptions } from "./httpServer";
import type { Metrics } from "./metrics";
import { securityHeaders, setSecurityHeaders } from "./securityHeaders";
import { boundedClose } from "./shutdown";
import { WebServer, type TlsFiles } from "./webServer";

/** What a client is told to wait before trying again (seconds). */
export const STANDBY_RETRY_AFTER_S = 1;
/** A worker's connection to a standby lives this long, so its channel reconnects (and may reach the leader). */
const STANDBY_CONNECTION_AGE_MS = 1_000;
/** How long closing the standby ports may take before open connections are dropped. */
const STANDBY_CLOSE_MS = 500;

export interface StandbyDeps {
  metrics: Metrics;
  files: ReadonlyMap<string, StaticFile>;
  /** What /healthz says besides its verdict (leader false). */
  health(): HealthFacts;
  /** Who leads, as the leader key says, if known. */
  leader(): string | undefined;
  tls?: TlsFiles;
  auth?: WebAuthOptions;
}

/** The message of every refused request and call. */
export function standbyMessage(leader: string | undefined): string {
  return `this master is standing by; the leader is ${leader ?? "not known yet"}`;
}

/**
 * The Socket.IO client script the page loads (/socket.io/socket.io.js), read
 * from the socket.io package as its server serves it: a page loaded from a
 * standby must get it, or it never runs and never reconnects.
 */
export function socketIoClientScript(): StaticFile {
  const file = join(dirname(require.resolve("socket.io")), "..", "client-dist", "socket.io.js");
  return { type: "text/javascript; charset=utf-8", body: readFileSync(file) };
}

export class StandbyServers {
  private readonly web: WebServer;
  private readonly grpc = new grpc.Server({
    "grpc.enable_channelz": 0,
    "grpc.max_connection_age_ms": STANDBY_CONNECTION_AGE_MS,
    "grpc.max_connection_age_grace_ms": STANDBY_CONNECTION_AGE_MS,
  });
  private readonly auth?: WebAuth;
  private readonly files: ReadonlyMap<string, StaticFile>;

  constructor(private readonly deps: StandbyDeps) {
    this.files = new Map([...deps.files, ["/socket.io/socket.io.js", socketIoClientScript()]]);
    this.auth = deps.auth ? new WebAuth(deps.auth.token) : undefined;
    const headers = securityHeaders(deps.tls !== undefined);
    this.web = new WebServer((req, res) => {
      setSecurityHeaders(res, headers);
      // Every connection ends with its answer: a client's next request opens a new
      // one, which a VIP in front of several masters may send to the leader.
      res.setHeader("connection", "close");
      this.handle(req, res).catch(() => {
        if (!res.headersSent) send(res, 500, { error: "internal error" });
      });
    }, deps.tls);
  }

  /** Listens on the web and gRPC ports; resolves with the bound ports. */
  async start(protoDir: string, host: string, httpPort: number, grpcPort: number): Promise<{ httpPort: number; grpcPort: number }> {
    const refuse = (_call: unknown, callback: grpc.sendUnaryData<unknown>): void => {
      callback(status(grpc.status.UNAVAILABLE, standbyMessage(this.deps.leader())));
    };
    this.grpc.addService(loadServiceDefinition(protoDir), { SendResult: refuse, GetTaskCredential: refuse });
    const address = host.includes(":") ? `[${host}]:${grpcPort}` : `${host}:${grpcPort}`;
    const boundGrpc = await new Promise<number>((resolve, reject) => {
      this.grpc.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, bound) => (err ? reject(err) : resolve(bound)));
    });
    const boundHttp = await this.web.listen(httpPort, host);
    return { httpPort: boundHttp, grpcPort: boundGrpc };
  }

  /** Frees both ports at once (open connections are dropped after a moment): the leader's servers bind them next. */
  async close(): Promise<void> {
    await Promise.all([
      boundedClose(this.web.close(), STANDBY_CLOSE_MS, () => this.web.destroyConnections()),
      boundedClose(new Promise<void>((done) => this.grpc.tryShutdown(() => done())), STANDBY_CLOSE_MS, () => this.grpc.forceShutdown()),
    ]);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? "/", "http://localhost").pathname;
    const method = req.method ?? "GET";
    if (path === "/healthz" && method === "GET") {
      const report: HealthReport = { ...this.deps.health(), status: "standby" };
      return send(res, 200, report);
    }
    if (path === "/metrics" && method === "GET") {
      if (!this.metricsAllowed(req)) {
        res.setHeader("www-authenticate", "Bearer");
        return send(res, 401, { error: "sign in first, or send Authorization: Bearer <token>" });
      }
      const registry = this.deps.metrics.registry;
      const text = await registry.metrics();
      res.writeHead(200, { "content-type": registry.contentType, "content-length": Buffer.byteLength(text) });
      res.end(text);
      return;
    }
    const file = (method === "GET" || method === "HEAD") && !path.startsWith("/api/") ? this.files.get(path === "/" ? "/index.html" : path) : undefined;
    if (file) {
      res.writeHead(200, { "content-type": file.type, "content-length": file.body.length, "cache-control": "no-cache" });
      res.end(method === "HEAD" ? undefined : file.body);
      return;
    }
    req.resume();
    res.setHeader("retry-after", String(STANDBY_RETRY_AFTER_S));
    send(res, 503, { error: standbyMessage(this.deps.leader()) });
  }

  private metricsAllowed(req: IncomingMessage): boolean {
    if (this.auth === undefined || this.deps.auth?.metricsOpen) return true;
    const token = bearerToken(req.headers.authorization);
    if (token !== undefined) return this.auth.tokenMatches(token);
    return this.auth.verify(readCookie(req.headers.cookie, SESSION_COOKIE), Date.now()) !== undefined;
  }
}
