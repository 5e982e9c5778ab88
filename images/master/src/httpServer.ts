// One HTTP server for the chat page, the REST API, /healthz, /metrics and
// Socket.IO. Validation lives in validation.ts; this file only translates
// between HTTP/Socket.IO and the QueryService.
//
// Plain node:http rather than a framework: five routes do not need one, and on
// the benchmark's hot path (POST + GET per query) a framework doubled the CPU
// spent per request.
import { readFileSync, readdirSync } from "node:fs";
import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { extname, join } from "node:path";
import { Server as SocketServer, type Socket } from "socket.io";
import type { Logger } from "./log";
import type { Metrics } from "./metrics";
import type { QueryService, QueryView } from "./queryService";
import type { RateLimiter } from "./rateLimit";
import { cleanSessionId, validateQueryInput } from "./validation";

export const MAX_BODY_BYTES = 64 * 1024;
const MAX_WAIT_MS = 30_000;
const WORKERS_PUSH_MS = 100;
const POSITIONS_PUSH_MS = 200;

export interface HttpDeps {
  service: QueryService;
  rateLimiter: RateLimiter;
  metrics: Metrics;
  log: Logger;
  maxQueryChars: number;
  health(): { mqtt: boolean; db: boolean };
  publicDir?: string;
}

type Submission =
  | { ok: true; id: string; status: string; position: number }
  | { ok: false; status: 400 | 429; error: string };

/** An error with the HTTP status to answer it with. */
class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

interface StaticFile {
  type: string;
  body: Buffer;
}

const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
};

export class HttpApi {
  readonly server: HttpServer;
  readonly io: SocketServer;
  private readonly files: Map<string, StaticFile>;
  private workersTimer?: NodeJS.Timeout;
  private positionsTimer?: NodeJS.Timeout;

  constructor(private readonly deps: HttpDeps) {
    this.files = loadPublicFiles(deps.publicDir ?? join(__dirname, "..", "public"));
    this.server = createServer((req, res) => {
      this.route(req, res).catch((err: unknown) => this.fail(res, err));
    });
    // Socket.IO answers /socket.io/* (its client script included) before our routes.
    this.io = new SocketServer(this.server, { serveClient: true, maxHttpBufferSize: MAX_BODY_BYTES });
    this.io.on("connection", (socket) => this.onSocket(socket));
    deps.service.setListeners({
      queryUpdated: (view, session) => this.pushQuery(view, session),
      workersChanged: () => this.schedulePush("workers"),
      queueChanged: () => this.schedulePush("positions"),
    });
  }

  listen(port: number, host: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(port, host, () => resolve((this.server.address() as AddressInfo).port));
    });
  }

  async close(): Promise<void> {
    clearTimeout(this.workersTimer);
    clearTimeout(this.positionsTimer);
    this.server.closeAllConnections();
    await this.io.close();
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
    const api = this.apiRoute(req, res, url);
    if (api !== undefined) {
      if (method === api.method) return api.handle();
      res.setHeader("allow", api.method);
      throw new HttpError(405, `${method} is not allowed on ${path}; use ${api.method}`);
    }
    if (path.startsWith("/api/")) throw new HttpError(404, "no such API route");
    const file = method === "GET" || method === "HEAD" ? this.files.get(path === "/" ? "/index.html" : path) : undefined;
    if (!file) throw new HttpError(404, "not found");
    res.writeHead(200, { "content-type": file.type, "content-length": file.body.length, "cache-control": "no-cache" });
    res.end(method === "HEAD" ? undefined : file.body);
  }

  /** The API route at a path: the one method it answers and its handler (one table for routing and 405s). */
  private apiRoute(req: IncomingMessage, res: ServerResponse, url: URL): { method: string; handle(): Promise<void> | void } | undefined {
    const path = url.pathname;
    if (path === "/api/queries") return { method: "POST", handle: () => this.postQuery(req, res) };
    if (path.startsWith("/api/queries/")) {
      const id = path.slice("/api/queries/".length);
      return { method: "GET", handle: () => this.getQuery(res, decodePathPart(id), url.searchParams.get("wait")) };
    }
    if (path === "/api/workers") return { method: "GET", handle: () => sendJson(res, 200, this.deps.service.workers()) };
    if (path === "/healthz") return { method: "GET", handle: () => this.healthz(res) };
    if (path === "/metrics") return { method: "GET", handle: () => this.metrics(res) };
    return undefined;
  }

  private async postQuery(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const header = req.headers["x-session-id"];
    const session = header === undefined ? clientIp(req) : cleanSessionId(header);
    if (session === undefined) throw new HttpError(400, "x-session-id must be 1-128 characters of [A-Za-z0-9_.:-]");
    // Every body is read as JSON whatever its content type: text gets a clear 400.
    const body = parseJson(await readBody(req, MAX_BODY_BYTES));
    const result = this.submit(body, session, clientIp(req));
    if (!result.ok) throw new HttpError(result.status, result.error);
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
    sendJson(res, 202, { id: result.id, status: result.status, position: result.position });
  }

  private async getQuery(res: ServerResponse, id: string, waitParam: string | null): Promise<void> {
    const wait = parseWait(waitParam);
    if (wait === undefined) throw new HttpError(400, "wait must be a non-negative integer number of milliseconds");
    const view = await this.deps.service.waitFor(id, wait);
    if (!view) throw new HttpError(404, `unknown query ${id}`);
    sendJson(res, 200, view);
  }

  private healthz(res: ServerResponse): void {
    const { mqtt, db } = this.deps.health();
    const ok = mqtt && db;
    sendJson(res, ok ? 200 : 503, { status: ok ? "ok" : "unavailable", mqtt, db });
  }

  private async metrics(res: ServerResponse): Promise<void> {
    const registry = this.deps.metrics.registry;
    const text = await registry.metrics();
    res.writeHead(200, { "content-type": registry.contentType, "content-length": Buffer.byteLength(text) });
    res.end(text);
  }

  private fail(res: ServerResponse, err: unknown): void {
    if (err instanceof HttpError) {
      if (!res.headersSent) sendJson(res, err.status, { error: err.message });
      return;
    }
    this.deps.log.error("http handler failed", { error: String(err) });
    if (!res.headersSent) sendJson(res, 500, { error: "internal error" });
    else res.destroy();
  }

  // ---- Socket.IO ---------------------------------------------------------------

  private onSocket(socket: Socket): void {
    const ip = socket.handshake.address;
    const auth = socket.handshake.auth as Record<string, unknown> | undefined;
    const session = cleanSessionId(auth?.sessionId) ?? ip;
    void socket.join(room(session));
    socket.emit("workers", this.deps.service.workers());
    // Oldest first, so the page can append in order.
    for (const view of this.deps.service.recent(session).reverse()) socket.emit("query:update", view);

    socket.on("query", (payload: unknown, ack: unknown) => {
      if (typeof ack !== "function") return; // the contract requires an ack
      try {
        const result = this.submit(payload, session, ip);
        ack(result.ok ? { ok: true, id: result.id, position: result.position } : { ok: false, error: result.error });
      } catch (err) {
        this.deps.log.error("socket query failed", { error: String(err) });
        ack({ ok: false, error: "internal error" });
      }
    });
  }

  private pushQuery(view: QueryView, session: string): void {
    const name = room(session);
    // Skip the encoding work when no page of that session is connected.
    if (this.io.sockets.adapter.rooms.has(name)) this.io.to(name).emit("query:update", view);
  }

  /** Coalesces bursts of changes into one push per interval. */
  private schedulePush(what: "workers" | "positions"): void {
    if (what === "workers" && !this.workersTimer) {
      this.workersTimer = setTimeout(() => {
        this.workersTimer = undefined;
        if (this.io.engine.clientsCount > 0) this.io.emit("workers", this.deps.service.workers());
      }, WORKERS_PUSH_MS);
    }
    if (what === "positions" && !this.positionsTimer) {
      this.positionsTimer = setTimeout(() => {
        this.positionsTimer = undefined;
        if (this.io.engine.clientsCount === 0) return;
        for (const { view, session } of this.deps.service.queued()) this.pushQuery(view, session);
      }, POSITIONS_PUSH_MS);
    }
  }
}

function room(session: string): string {
  return `session:${session}`;
}

function clientIp(req: IncomingMessage): string {
  return req.socket.remoteAddress ?? "unknown";
}

function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { "content-type": "application/json; charset=utf-8", "content-length": Buffer.byteLength(body) });
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
function loadPublicFiles(dir: string): Map<string, StaticFile> {
  const files = new Map<string, StaticFile>();
  for (const name of readdirSync(dir)) {
    const type = CONTENT_TYPES[extname(name)];
    if (type) files.set(`/${name}`, { type, body: readFileSync(join(dir, name)) });
  }
  return files;
}
