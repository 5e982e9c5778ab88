// The web port: the chat page, the REST API, /healthz, /metrics and Socket.IO.
// Validation lives in validation.ts, the token and cookie in auth.ts, the
// TLS/plain-HTTP split in webServer.ts; this file translates between
// HTTP/Socket.IO and the QueryService and applies the access rules.
//
// Plain node:http rather than a framework: a handful of routes do not need one,
// and on the benchmark's hot path (POST + GET per query) a framework doubled
// the CPU spent per request.
import { readFileSync, readdirSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { extname, join } from "node:path";
import { Server as SocketServer, type DefaultEventsMap, type Socket } from "socket.io";
import { bearerToken, readCookie, SESSION_COOKIE, sessionCookieHeader, WebAuth, type Session } from "./auth";
import { ClusterAggregator, type ClusterOptions } from "./cluster";
import type { EtcdMemberHealth } from "./etcdMembers";
import type { Logger } from "./log";
import type { Metrics } from "./metrics";
import type { QueryService, QueryView } from "./queryService";
import type { RateLimiter } from "./rateLimit";
import { sameOrigin, securityHeaders, setSecurityHeaders } from "./securityHeaders";
import { boundedClose, SHUTDOWN_STEP_MS, type StepEnd } from "./shutdown";
import { SignInBackoff } from "./signInBackoff";
import { cleanSessionId, validateQueryInput } from "./validation";
import { WebServer, type TlsFiles } from "./webServer";

export const MAX_BODY_BYTES = 64 * 1024;
const MAX_SIGN_IN_BYTES = 4 * 1024;
const MAX_WAIT_MS = 30_000;
/** setTimeout's limit (~24.8 days); longer session lifetimes are cut to it for the socket timer. */
const MAX_TIMER_MS = 2 ** 31 - 1;
const POSITIONS_PUSH_MS = 200;
/** How often the cluster view may change on the pages (once, for all of them). */
export const CLUSTER_PUSH_MS = 1000;
/** Nodes one page may watch the details of at once. */
const MAX_WATCHED_NODES = 64;
const MAX_NODE_NAME = 256;

export interface HttpDeps {
  service: QueryService;
  rateLimiter: RateLimiter;
  metrics: Metrics;
  log: Logger;
  maxQueryChars: number;
  health(): HealthFacts;
  /** The page's files (default: read from publicDir). */
  files?: ReadonlyMap<string, StaticFile>;
  publicDir?: string;
  /** Serve HTTPS (plain HTTP on the same port only redirects). */
  tls?: TlsFiles;
  /** Access control; absent means off: whoever reaches the port may use everything. */
  auth?: WebAuthOptions;
  /** Failed sign-ins per address (the caller prunes it). */
  signInBackoff?: SignInBackoff;
  /** Interval of the cluster pushes (default CLUSTER_PUSH_MS). */
  clusterPushMs?: number;
  cluster?: ClusterOptions;
}

/** What /healthz reports besides its verdict. */
export interface HealthFacts {
  mqtt: boolean;
  /** The store answers (SQLite: a query; etcd: a member that knows a Raft leader). */
  db: boolean;
  /** This master dispatches (always true with SQLite). */
  leader: boolean;
  store: "sqlite" | "etcd";
  /** etcd only: the members this master sees. */
  members?: EtcdMemberHealth[];
  /** etcd only: who leads, as the leader key says (this master's id and address while it leads). */
  current_leader?: string;
}

/**
 * The body of /healthz. `degraded`: the store answers but the broker does not;
 * the master still serves the page and accepts queries (they wait, queued,
 * until the broker is back), so Docker's health check passes: restarting the
 * master would not bring the broker back, and would cost a leader.
 */
export interface HealthReport extends HealthFacts {
  status: "ok" | "degraded" | "unavailable" | "standby";
}

export interface WebAuthOptions {
  token: string;
  sessionTtlMs: number;
  /** /metrics without the token. */
  metricsOpen: boolean;
}

/** How a request proved who it is, with access control on. */
type Credential = { kind: "cookie"; session: Session } | { kind: "bearer" };

type Handler = (req: IncomingMessage, res: ServerResponse, url: URL, credential: Credential | undefined) => Promise<void> | void;

interface Route {
  /** Needs no credential even with access control on. */
  open: boolean;
  /** Method -> handler: one table for routing and 405s. */
  methods: Record<string, Handler>;
}

interface SocketData {
  session: string;
  expiresAtMs?: number;
  /** Nodes whose details this page watches. */
  watched?: Set<string>;
}

type ChatServer = SocketServer<DefaultEventsMap, DefaultEventsMap, DefaultEventsMap, SocketData>;
type ChatSocket = Socket<DefaultEventsMap, DefaultEventsMap, DefaultEventsMap, SocketData>;

type Submission =
  | { ok: true; id: string; status: string; position: number }
  | { ok: false; status: 400 | 429; error: string };

/** An error with the HTTP status to answer it with. */
class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export interface StaticFile {
  type: string;
  body: Buffer;
}

const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
};

export class HttpApi {
  readonly web: WebServer;
  readonly io: ChatServer;
  private readonly files: ReadonlyMap<string, StaticFile>;
  private readonly tls: boolean;
  private readonly auth?: WebAuth;
  private readonly backoff: SignInBackoff;
  /** The cluster view's numbers, computed once per interval for every page. */
  readonly cluster: ClusterAggregator;
  private readonly clusterTimer: NodeJS.Timeout;
  private positionsTimer?: NodeJS.Timeout;

  constructor(private readonly deps: HttpDeps) {
    this.files = deps.files ?? loadPublicFiles(deps.publicDir);
    this.tls = deps.tls !== undefined;
    this.auth = deps.auth ? new WebAuth(deps.auth.token) : undefined;
    this.backoff = deps.signInBackoff ?? new SignInBackoff();
    this.web = new WebServer((req, res) => {
      this.route(req, res).catch((err: unknown) => this.fail(res, err));
    }, deps.tls);
    // Socket.IO answers /socket.io/* (its client script included) before our routes.
    this.io = new SocketServer(this.web.main, {
      serveClient: true,
      maxHttpBufferSize: MAX_BODY_BYTES,
      allowRequest: (req, callback) => {
        const ok = sameOrigin(req, this.tls);
        callback(ok ? null : "cross-origin request refused", ok);
      },
    });
    this.io.use((socket, next) => {
      const data = this.socketSession(socket);
      if (data === undefined) return next(new Error("unauthorized"));
      socket.data = data;
      next();
    });
    this.io.on("connection", (socket) => this.onSocket(socket));
    // Prepended after Socket.IO attached, so its responses (polling, client
    // script, errors) carry the security headers too.
    const headers = securityHeaders(this.tls);
    this.web.main.prependListener("request", (_req: IncomingMessage, res: ServerResponse) => setSecurityHeaders(res, headers));
    const plainHeaders = securityHeaders(false);
    this.web.plain?.prependListener("request", (_req, res) => setSecurityHeaders(res, plainHeaders));
    this.cluster = new ClusterAggregator(deps.service, deps.cluster);
    deps.service.setListeners({
      queryUpdated: (view, session) => this.pushQuery(view, session),
      // Nothing per worker change: the scheduler flags the node, the cluster tick reads it.
      workersChanged: () => {},
      queueChanged: () => this.schedulePositions(),
      queryFinished: (view) => {
        const completed = view.timings.completed_ms ?? Date.now();
        this.cluster.recordAnswer(view.worker?.node ?? null, completed - view.timings.created_ms, view.status === "done", completed);
      },
    });
    this.clusterTimer = setInterval(() => this.pushCluster(), deps.clusterPushMs ?? CLUSTER_PUSH_MS);
    this.clusterTimer.unref();
  }

  listen(port: number, host: string): Promise<number> {
    return this.web.listen(port, host);
  }

  /**
   * Closes the web port within `graceMs`: stops accepting, answers the
   * long-polls and `Prefer: wait` requests with what they have, disconnects the
   * Socket.IO clients and closes keep-alive connections as they go idle. What
   * is still open after `graceMs` (a client that does not answer the WebSocket
   * close, a request that never finishes arriving) is dropped.
   */
  async close(graceMs = SHUTDOWN_STEP_MS): Promise<StepEnd> {
    clearInterval(this.clusterTimer);
    clearTimeout(this.positionsTimer);
    this.deps.service.stopWaiting();
    const closed = this.web.close();
    const graceful = this.io.close().then(() => closed);
    return boundedClose(graceful, graceMs, () => this.web.destroyConnections());
  }

  /** One path for REST and Socket.IO: rate limit, validation, session cap. */
  submit(body: unknown, session: string, clientIp: string): Submission {
    if (!this.deps.rateLimiter.allow(clientIp, Date.now())) {
      return { ok: false, status: 429, error: "too many queries from this client; try again in a minute" };
    }
    const input = validateQueryInput(body, this.deps.maxQueryChars);
    if (!input.ok) return { ok: false, status: 400, error: input.error };
    const result = this.deps.service.submit(input.value, session);
    if (!result.ok) {
      return { ok: false, status: 429, error: "this session already has the maximum number of queued queries" };
    }
    return result;
  }

  // ---- REST ------------------------------------------------------------------

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://localhost");
    const path = url.pathname;
    const method = req.method ?? "GET";
    if ((method === "POST" || method === "DELETE") && !sameOrigin(req, this.tls)) {
      throw new HttpError(403, "cross-origin request refused");
    }
    const api = this.apiRoute(path);
    if (api !== undefined) {
      const credential = api.open ? undefined : this.authenticate(req);
      const handle = api.methods[method];
      if (handle) return handle(req, res, url, credential);
      const allowed = Object.keys(api.methods).join(", ");
      res.setHeader("allow", allowed);
      throw new HttpError(405, `${method} is not allowed on ${path}; use ${allowed}`);
    }
    if (path.startsWith("/api/")) {
      this.authenticate(req);
      throw new HttpError(404, "no such API route");
    }
    const file = method === "GET" || method === "HEAD" ? this.files.get(path === "/" ? "/index.html" : path) : undefined;
    if (!file) throw new HttpError(404, "not found");
    res.writeHead(200, { "content-type": file.type, "content-length": file.body.length, "cache-control": "no-cache" });
    res.end(method === "HEAD" ? undefined : file.body);
  }

  /** The API route at a path, or undefined. */
  private apiRoute(path: string): Route | undefined {
    if (path === "/api/queries") return { open: false, methods: { POST: (req, res, _url, cred) => this.postQuery(req, res, cred) } };
    if (path.startsWith("/api/queries/")) {
      const id = path.slice("/api/queries/".length);
      return {
        open: false,
        methods: { GET: (req, res, url, cred) => this.getQuery(req, res, decodePathPart(id), url.searchParams.get("wait"), cred) },
      };
    }
    if (path === "/api/workers") return { open: false, methods: { GET: (_req, res) => sendJson(res, 200, this.deps.service.workers()) } };
    if (path === "/api/cluster") return { open: false, methods: { GET: (_req, res) => sendJson(res, 200, this.cluster.summary(Date.now())) } };
    if (path === "/api/session") {
      return {
        open: true,
        methods: {
          GET: (req, res) => this.sessionState(req, res),
          POST: (req, res) => this.signIn(req, res),
          DELETE: (req, res) => this.signOut(req, res),
        },
      };
    }
    if (path === "/healthz") return { open: true, methods: { GET: (_req, res) => this.healthz(res) } };
    if (path === "/metrics") return { open: this.deps.auth?.metricsOpen ?? true, methods: { GET: (_req, res) => this.metrics(res) } };
    return undefined;
  }

  /**
   * With access control on: the request's credential (a valid session cookie,
   * or the token as `Authorization: Bearer`), else a 401 (a 429 while the
   * address is backing off after wrong tokens). Undefined with access control off.
   */
  private authenticate(req: IncomingMessage): Credential | undefined {
    if (!this.auth) return undefined;
    const header = req.headers.authorization;
    if (header !== undefined) {
      const token = bearerToken(header);
      if (token === undefined) throw unauthorized("use Authorization: Bearer <token>");
      const address = clientIp(req);
      const wait = this.backoff.check(address, Date.now());
      if (!wait.ok) throw tooManyAttempts(wait.retryAfterS);
      if (this.auth.tokenMatches(token)) {
        this.backoff.success(address);
        return { kind: "bearer" };
      }
      this.backoff.failure(address, Date.now());
      this.deps.log.warn("web request with a wrong token refused", { address });
      throw unauthorized("wrong token");
    }
    const session = this.cookieSession(req.headers.cookie);
    if (session) return { kind: "cookie", session };
    throw unauthorized("sign in first, or send Authorization: Bearer <token>");
  }

  private cookieSession(cookieHeader: string | undefined): Session | undefined {
    return this.auth?.verify(readCookie(cookieHeader, SESSION_COOKIE), Date.now());
  }

  /**
   * The session a request's queries belong to. With access control on it comes
   * from the credential: `web:<id>` for a signed-in page, `api:<X-Session-Id or
   * "default">` for a bearer client (which therefore cannot name a `web:` one).
   * Off, the client names it with X-Session-Id, else it is the client's address.
   */
  private sessionFor(req: IncomingMessage, credential: Credential | undefined): string {
    if (credential?.kind === "cookie") return `web:${credential.session.id}`;
    const header = req.headers["x-session-id"];
    const named = header === undefined ? undefined : cleanSessionId(header);
    if (header !== undefined && named === undefined) {
      throw new HttpError(400, "x-session-id must be 1-128 characters of [A-Za-z0-9_.:-]");
    }
    if (credential?.kind === "bearer") return `api:${named ?? "default"}`;
    return named ?? clientIp(req);
  }

  private async postQuery(req: IncomingMessage, res: ServerResponse, credential: Credential | undefined): Promise<void> {
    const session = this.sessionFor(req, credential);
    // Every body is read as JSON whatever its content type: text gets a clear 400.
    const body = parseJson(await readBody(req, MAX_BODY_BYTES));
    const result = this.submit(body, session, clientIp(req));
    if (!result.ok) throw new HttpError(result.status, result.error);
    // Accepted means stored: answer once the query is on disk (group commit).
    await this.deps.service.committed();
    const waitMs = preferredWaitMs(req.headers.prefer);
    if (waitMs > 0) {
      // RFC 7240 `Prefer: wait=N`: answer in this response when the query ends
      // within N seconds, which saves a client the second request.
      const view = await this.deps.service.waitFor(result.id, waitMs);
      if (view && (view.status === "done" || view.status === "failed")) {
        res.setHeader("preference-applied", `wait=${waitMs / 1000}`);
        return sendJson(res, 200, view);
      }
      const now = view ?? result;
      return sendJson(res, 202, { id: result.id, status: now.status, position: now.position });
    }
    const now = this.deps.service.get(result.id) ?? result;
    sendJson(res, 202, { id: result.id, status: now.status, position: now.position });
  }

  private async getQuery(
    req: IncomingMessage,
    res: ServerResponse,
    id: string,
    waitParam: string | null,
    credential: Credential | undefined,
  ): Promise<void> {
    const wait = parseWait(waitParam);
    if (wait === undefined) throw new HttpError(400, "wait must be a non-negative integer number of milliseconds");
    // With access control on, another session's query is as unknown as a made-up id.
    if (credential !== undefined && this.deps.service.sessionOf(id) !== this.sessionFor(req, credential)) {
      throw new HttpError(404, `unknown query ${id}`);
    }
    const view = await this.deps.service.waitFor(id, wait);
    if (!view) throw new HttpError(404, `unknown query ${id}`);
    sendJson(res, 200, view);
  }

  // ---- sign-in -------------------------------------------------------------------

  private sessionState(req: IncomingMessage, res: ServerResponse): void {
    sendJson(res, 200, {
      auth: this.auth ? "token" : "off",
      signedIn: this.cookieSession(req.headers.cookie) !== undefined,
    });
  }

  private async signIn(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!this.auth || !this.deps.auth) throw new HttpError(400, "access control is off: there is nothing to sign in to");
    const address = clientIp(req);
    const wait = this.backoff.check(address, Date.now());
    if (!wait.ok) throw tooManyAttempts(wait.retryAfterS);
    const body = parseJson(await readBody(req, MAX_SIGN_IN_BYTES));
    const token = typeof body === "object" && body !== null ? (body as Record<string, unknown>).token : undefined;
    if (typeof token !== "string" || token === "") throw new HttpError(400, 'body must be a JSON object like {"token": "..."}');
    if (!this.auth.tokenMatches(token)) {
      this.backoff.failure(address, Date.now());
      this.deps.log.warn("web sign-in refused: wrong token", { address });
      throw new HttpError(401, "wrong token");
    }
    this.backoff.success(address);
    const ttlMs = this.deps.auth.sessionTtlMs;
    const { cookie } = this.auth.issue(Date.now(), ttlMs);
    this.deps.log.info("web sign-in", { address });
    res.writeHead(204, { "set-cookie": sessionCookieHeader(cookie, Math.floor(ttlMs / 1000), this.tls), "cache-control": "no-store" });
    res.end();
  }

  /** Clears the cookie and closes the session's sockets (the cookie itself stays valid until it expires). */
  private signOut(req: IncomingMessage, res: ServerResponse): void {
    const session = this.cookieSession(req.headers.cookie);
    if (session) this.io.in(room(`web:${session.id}`)).disconnectSockets(true);
    res.writeHead(204, { "set-cookie": sessionCookieHeader("", 0, this.tls), "cache-control": "no-store" });
    res.end();
  }

  private healthz(res: ServerResponse): void {
    const facts = this.deps.health();
    const status = !facts.db ? "unavailable" : facts.mqtt ? "ok" : "degraded";
    const report: HealthReport = { status, ...facts };
    sendJson(res, facts.db ? 200 : 503, report);
  }

  private async metrics(res: ServerResponse): Promise<void> {
    const registry = this.deps.metrics.registry;
    const text = await registry.metrics();
    res.writeHead(200, { "content-type": registry.contentType, "content-length": Buffer.byteLength(text) });
    res.end(text);
  }

  private fail(res: ServerResponse, err: unknown): void {
    if (err instanceof HttpError) {
      if (res.headersSent) return;
      for (const [name, value] of Object.entries(err.headers)) res.setHeader(name, value);
      sendJson(res, err.status, { error: err.message });
      return;
    }
    this.deps.log.error("http handler failed", { error: String(err) });
    if (!res.headersSent) sendJson(res, 500, { error: "internal error" });
    else res.destroy();
  }

  // ---- Socket.IO ---------------------------------------------------------------

  /**
   * The session of a connecting socket. With access control on it comes from
   * the session cookie only (undefined without a valid one: the handshake is
   * refused); off, from `auth.sessionId`, else the client's address.
   */
  private socketSession(socket: ChatSocket): SocketData | undefined {
    if (this.auth) {
      const session = this.cookieSession(socket.handshake.headers.cookie);
      return session ? { session: `web:${session.id}`, expiresAtMs: session.expiresAtMs } : undefined;
    }
    const auth = socket.handshake.auth as Record<string, unknown> | undefined;
    return { session: cleanSessionId(auth?.sessionId) ?? socket.handshake.address };
  }

  private onSocket(socket: ChatSocket): void {
    const ip = socket.handshake.address;
    const { session, expiresAtMs } = socket.data;
    if (expiresAtMs !== undefined) {
      // The session ends for a connected page too: the page then asks to sign in again.
      const timer = setTimeout(() => socket.disconnect(true), Math.min(Math.max(expiresAtMs - Date.now(), 0), MAX_TIMER_MS));
      socket.once("disconnect", () => clearTimeout(timer));
    }
    void socket.join(room(session));
    socket.emit("cluster", this.cluster.summary(Date.now()));
    // What is replayed is what is on disk. Oldest first, so the page can append in order.
    this.deps.service.afterCommit(() => {
      for (const view of this.deps.service.recent(session).reverse()) socket.emit("query:update", view);
    });

    socket.on("query", (payload: unknown, ack: unknown) => {
      if (typeof ack !== "function") return; // the contract requires an ack
      try {
        const result = this.submit(payload, session, ip);
        if (!result.ok) return ack({ ok: false, error: result.error });
        this.deps.service.afterCommit(() => {
          const position = this.deps.service.get(result.id)?.position ?? result.position;
          ack({ ok: true, id: result.id, position });
        });
      } catch (err) {
        this.deps.log.error("socket query failed", { error: String(err) });
        ack({ ok: false, error: "internal error" });
      }
    });

    // The details of a node (its worker list), to pages that asked for them only.
    socket.on("node:watch", (payload: unknown, ack: unknown) => {
      const reply = typeof ack === "function" ? (ack as (value: unknown) => void) : () => {};
      const request = parseWatch(payload);
      if (typeof request === "string") return reply({ ok: false, error: request });
      const watched = (socket.data.watched ??= new Set());
      const name = nodeRoom(request.node);
      if (!request.watch) {
        watched.delete(request.node);
        void socket.leave(name);
        return reply({ ok: true });
      }
      if (!watched.has(request.node) && watched.size >= MAX_WATCHED_NODES) {
        return reply({ ok: false, error: `a page may watch at most ${MAX_WATCHED_NODES} nodes` });
      }
      watched.add(request.node);
      void socket.join(name);
      socket.emit("node:workers", { node: request.node, workers: this.deps.service.nodeWorkers(request.node) });
      reply({ ok: true });
    });
  }

  /**
   * Once per interval, for every page at once: the cluster summary when
   * anything it shows changed (one serialization, one frame, broadcast), and
   * the worker list of each changed node to the pages watching that node.
   */
  private pushCluster(): void {
    const { summary, changedNodes } = this.cluster.tick(Date.now());
    if (this.io.engine.clientsCount === 0) return;
    if (summary) this.io.emit("cluster", summary);
    const rooms = this.io.sockets.adapter.rooms;
    for (const node of changedNodes) {
      const name = nodeRoom(node);
      if (rooms.has(name)) this.io.to(name).emit("node:workers", { node, workers: this.deps.service.nodeWorkers(node) });
    }
  }

  private pushQuery(view: QueryView, session: string): void {
    const name = room(session);
    // Skip the encoding work when no page of that session is connected.
    if (this.io.sockets.adapter.rooms.has(name)) this.io.to(name).emit("query:update", view);
  }

  /** New queue positions, at most once per interval, to the connected sessions only. */
  private schedulePositions(): void {
    if (this.positionsTimer) return;
    this.positionsTimer = setTimeout(() => {
      this.positionsTimer = undefined;
      if (this.io.engine.clientsCount === 0) return;
      const rooms = this.io.sockets.adapter.rooms;
      for (const { view, session } of this.deps.service.queuedFor((s) => rooms.has(room(s)))) {
        this.io.to(room(session)).emit("query:update", view);
      }
    }, POSITIONS_PUSH_MS);
  }
}

function room(session: string): string {
  return `session:${session}`;
}

function nodeRoom(node: string): string {
  return `node:${node}`;
}

/** `{node, watch}` from a page, or what is wrong with it. */
function parseWatch(payload: unknown): { node: string; watch: boolean } | string {
  if (typeof payload !== "object" || payload === null) return 'expected {"node": "...", "watch": true|false}';
  const { node, watch } = payload as Record<string, unknown>;
  if (typeof node !== "string" || node.length === 0 || node.length > MAX_NODE_NAME) return `node must be a string of 1-${MAX_NODE_NAME} characters`;
  if (typeof watch !== "boolean") return "watch must be true or false";
  return { node, watch };
}

function clientIp(req: IncomingMessage): string {
  return req.socket.remoteAddress ?? "unknown";
}

function unauthorized(message: string): HttpError {
  return new HttpError(401, message, { "www-authenticate": "Bearer" });
}

function tooManyAttempts(retryAfterS: number): HttpError {
  return new HttpError(429, `too many wrong tokens from this address; try again in ${retryAfterS} s`, { "retry-after": String(retryAfterS) });
}

export function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(body),
    "cache-control": "no-store",
  });
  res.end(body);
}

/** Reads the whole body, refusing more than `limit` bytes with a 413. */
function readBody(req: IncomingMessage, limit: number): Promise<string> {
  const declared = Number(req.headers["content-length"] ?? 0);
  if (declared > limit) {
    req.resume(); // drain, so the connection can answer
    return Promise.reject(new HttpError(413, `request body is larger than ${limit} bytes`));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) chunks.push(chunk);
    });
    req.on("end", () => {
      if (size > limit) reject(new HttpError(413, `request body is larger than ${limit} bytes`));
      else resolve(Buffer.concat(chunks).toString("utf8"));
    });
    req.on("error", reject);
  });
}

function decodePathPart(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new HttpError(400, "malformed URL encoding in the query id");
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new HttpError(400, "request body is not valid JSON");
  }
}

/**
 * `Prefer: wait=N` (RFC 7240, seconds) in milliseconds, cut to 30 s; 0 when
 * absent or unreadable (a preference the server may ignore is never an error).
 */
export function preferredWaitMs(header: string | string[] | undefined): number {
  const text = Array.isArray(header) ? header.join(",") : (header ?? "");
  const match = /(?:^|[,;\s])wait\s*=\s*"?(\d{1,6})"?(?:$|[,;\s])/i.exec(text);
  return match ? Math.min(Number(match[1]) * 1000, MAX_WAIT_MS) : 0;
}

/** `?wait=MS`: absent means 0, longer waits are cut to 30 s, non-integers are an error. */
function parseWait(value: string | null): number | undefined {
  if (value === null) return 0;
  if (!/^\d{1,9}$/.test(value)) return undefined;
  return Math.min(Number(value), MAX_WAIT_MS);
}

/** The chat page is three small files: read once, served from memory. */
export function loadPublicFiles(dir: string = join(__dirname, "..", "public")): Map<string, StaticFile> {
  const files = new Map<string, StaticFile>();
  for (const name of readdirSync(dir)) {
    const type = CONTENT_TYPES[extname(name)];
    if (type) files.set(`/${name}`, { type, body: readFileSync(join(dir, name)) });
  }
  return files;
}
