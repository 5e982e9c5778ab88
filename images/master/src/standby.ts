// What a master that does not lead (STORE=etcd, another master holds the
// leader key) serves on its ports until it wins:
// - web port: GET /healthz (200, `leader: false`), GET /metrics (same access
//   rule as the leader's), the page's own files and the Socket.IO client script
//   (so a page loaded here shows "reconnecting" and retries); every other path
//   — the REST API and Socket.IO — 503 with Retry-After and who leads. Every
//   connection is closed after its answer, so behind a VIP the client's next
//   one may reach the leader.
// - gRPC port: closed. A worker's connection is refused, so its channel tries
//   the service's next address (Swarm's DNS round-robin lists every master;
//   gRPC's pick_first connects to the first that accepts) or, behind a VIP,
//   reconnects until it reaches the leader; its calls fail UNAVAILABLE meanwhile,
//   which it retries (docs/protocol.md rule 5). An open port that refused every
//   call kept a connected worker on the standby: measured on the lab, a Java
//   worker gave up a result after 29 attempts, all answered by the standby.
// It holds no queue: it never connects to MQTT and opens no store.
import { readFileSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { dirname, join } from "node:path";
import { bearerToken, readCookie, SESSION_COOKIE, WebAuth } from "./auth";
import { sendJson as send, type HealthFacts, type HealthReport, type StaticFile, type WebAuthOptions } from "./httpServer";
import type { Metrics } from "./metrics";
import { securityHeaders, setSecurityHeaders } from "./securityHeaders";
import { boundedClose } from "./shutdown";
import { WebServer, type TlsFiles } from "./webServer";

/** What a client is told to wait before trying again (seconds). */
export const STANDBY_RETRY_AFTER_S = 1;
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

/** The message of every refused request. */
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

  /** Listens on the web port only (the gRPC port stays closed until this master leads); resolves with the bound port. */
  async start(host: string, httpPort: number): Promise<number> {
    return this.web.listen(httpPort, host);
  }

  /** Frees the web port (open connections are dropped after a moment): the leader's servers bind it next. */
  async close(): Promise<void> {
    await boundedClose(this.web.close(), STANDBY_CLOSE_MS, () => this.web.destroyConnections());
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
