/**
 * The open-loop load of npm run bench:cluster: queries at a fixed rate, each
 * on a new TCP connection (`Connection: close`), as many independent clients
 * would send them. Open loop: a query is sent when its time comes, whatever
 * the earlier ones are doing, so a slow master shows as growing latency and
 * as connection failures (an accept queue that overflows drops SYNs: the
 * client's kernel retries after ~1 s, which shows as a connect time over
 * 900 ms, or the connection is reset).
 *
 * Each query is a POST /api/queries with `Prefer: wait=30`: the master
 * answers in the same response when the query ends within 30 s. A 202 (not
 * finished yet) is followed by GET /api/queries/:id?wait=30000 until the
 * query ends or the drain deadline passes.
 *
 * One-shot requests use a plain socket and a minimal HTTP/1.1 reader (the
 * load generator shares two cores with what it measures; node:http costs
 * about as much per request as the master serving it).
 */
import { connect } from "node:net";
import { performance } from "node:perf_hooks";

export interface ShotRequest {
  method: "GET" | "POST";
  path: string;
  headers?: Record<string, string>;
  body?: unknown;
}

export interface ShotResult {
  /** Milliseconds from connect() until the TCP handshake completed; undefined if it never did. */
  connectMs?: number;
  status?: number;
  body?: unknown;
  /** Connection-level failure: the socket error code (ECONNRESET, ECONNREFUSED, …), TIMEOUT, or EOF (closed mid-response). */
  error?: string;
  totalMs: number;
}

const HEADER_END = Buffer.from("\r\n\r\n");

/** Parses a whole HTTP/1.1 response read until the server closed the connection. */
export function parseResponse(raw: Buffer): { status: number; body: unknown } | undefined {
  const end = raw.indexOf(HEADER_END);
  if (end < 0) return undefined;
  const head = raw.subarray(0, end).toString("latin1");
  const status = /^HTTP\/1\.[01] (\d{3})/.exec(head);
  if (!status) return undefined;
  const length = /\r\ncontent-length:\s*(\d+)/i.exec(head);
  const bodyStart = end + HEADER_END.length;
  const bodyEnd = length ? bodyStart + Number(length[1]) : raw.length;
  if (raw.length < bodyEnd) return undefined; // closed before the whole body arrived
  const text = raw.subarray(bodyStart, bodyEnd).toString("utf8");
  let body: unknown;
  try {
    body = text === "" ? undefined : (JSON.parse(text) as unknown);
  } catch {
    body = text;
  }
  return { status: Number(status[1]), body };
}

/** One request on a new connection that the server closes after answering. */
export function oneShot(host: string, port: number, request: ShotRequest, timeoutMs: number): Promise<ShotResult> {
  const started = performance.now();
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let connectMs: number | undefined;
    let settled = false;
    const socket = connect({ host, port, noDelay: true });
    const finish = (result: Omit<ShotResult, "totalMs" | "connectMs">): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ connectMs, totalMs: performance.now() - started, ...result });
    };
    const timer = setTimeout(() => finish({ error: "TIMEOUT" }), timeoutMs);
    socket.once("connect", () => {
      connectMs = performance.now() - started;
      const body = request.body === undefined ? "" : JSON.stringify(request.body);
      const lines = [`${request.method} ${request.path} HTTP/1.1`, `host: ${host}:${port}`, "connection: close"];
      for (const [name, value] of Object.entries(request.headers ?? {})) lines.push(`${name}: ${value}`);
      if (request.body !== undefined) lines.push("content-type: application/json", `content-length: ${Buffer.byteLength(body)}`);
      socket.write(`${lines.join("\r\n")}\r\n\r\n${body}`);
    });
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    socket.once("end", () => {
      const parsed = parseResponse(Buffer.concat(chunks));
      finish(parsed ? { status: parsed.status, body: parsed.body } : { error: "EOF" });
    });
    socket.once("error", (error: NodeJS.ErrnoException) => finish({ error: error.code ?? error.message }));
    socket.once("close", () => finish({ error: "EOF" }));
  });
}

/**
 * answered/failed: the query ended so; refused: an HTTP status other than
 * 200/202; conn-fail: no HTTP response to the POST; unfinished: still queued
 * or assigned when the drain deadline came; lost: accepted, then unknown to
 * the master (404) or no longer reachable.
 */
export type QueryOutcome = "answered" | "failed" | "refused" | "conn-fail" | "unfinished" | "lost";

/** What became of one query, as the client saw it. Times in ms from the start of the level. */
export interface QueryRecord {
  n: number;
  scheduledMs: number;
  sentMs: number;
  /** Of the POST's connection. */
  connectMs?: number;
  /** The POST's HTTP status. */
  status?: number;
  /** Connection-level failure of the POST (or of a follow-up GET, which then counts as lost). */
  error?: string;
  outcome: QueryOutcome;
  /** From sending the POST until holding the finished query (answered or failed). */
  latencyMs?: number;
  /** The master's own account: assigned − created. */
  queueMs?: number;
  /** GETs needed after a 202. */
  followUps: number;
}

interface QueryView {
  id?: string;
  status?: string;
  timings?: { created_ms?: number | null; assigned_ms?: number | null };
}

export interface OpenLoopOptions {
  host: string;
  port: number;
  /** Queries per second. */
  rate: number;
  /** How long queries are sent. */
  seconds: number;
  /** Follow-ups of queries still running stop this long after the last query was sent. */
  drainMs: number;
  /** X-Session-Id is one of this many (the master caps queued queries per session). */
  sessions?: number;
}

export interface OpenLoop {
  /** performance.now() when the first query was due. */
  readonly startedAt: number;
  /** Queries sent so far. */
  readonly sent: number;
  /** Resolves with every query's record once all are settled (or given up at the drain deadline). */
  readonly done: Promise<QueryRecord[]>;
}

const POST_TIMEOUT_MS = 45_000; // Prefer: wait=30 plus room for a slow master

/** Starts sending now; see OpenLoop. */
export function startOpenLoop(options: OpenLoopOptions): OpenLoop {
  const total = Math.round(options.rate * options.seconds);
  const sessions = options.sessions ?? 100;
  const startedAt = performance.now();
  const drainDeadline = startedAt + options.seconds * 1000 + options.drainMs;
  const pending: Promise<QueryRecord>[] = [];
  let sent = 0;
  let resolveDone: (records: QueryRecord[]) => void = () => {};
  const done = new Promise<QueryRecord[]>((resolve) => {
    resolveDone = resolve;
  });

  const fire = (n: number): Promise<QueryRecord> => {
    const scheduledMs = (n * 1000) / options.rate;
    return oneQuery(options.host, options.port, n, scheduledMs, startedAt, `cluster-${n % sessions}`, drainDeadline);
  };
  // A 5 ms tick sends every query whose time has come (catching up after a late tick).
  const timer = setInterval(() => {
    const due = Math.min(total, Math.floor(((performance.now() - startedAt) * options.rate) / 1000) + 1);
    while (sent < due) pending.push(fire(sent++));
    if (sent >= total) {
      clearInterval(timer);
      void Promise.all(pending).then(resolveDone);
    }
  }, 5);
  return {
    startedAt,
    get sent() {
      return sent;
    },
    done,
  };
}

async function oneQuery(host: string, port: number, n: number, scheduledMs: number, t0: number, session: string, drainDeadline: number): Promise<QueryRecord> {
  const sentAt = performance.now();
  const record: QueryRecord = { n, scheduledMs, sentMs: sentAt - t0, outcome: "unfinished", followUps: 0 };
  const post = await oneShot(host, port, {
    method: "POST",
    path: "/api/queries",
    headers: { prefer: "wait=30", "x-session-id": session },
    body: { query: `cluster benchmark query ${n}` },
  }, POST_TIMEOUT_MS);
  record.connectMs = post.connectMs;
  record.status = post.status;
  if (post.error !== undefined) {
    record.error = post.error;
    record.outcome = "conn-fail";
    return record;
  }
  if (post.status !== 200 && post.status !== 202) {
    record.outcome = "refused";
    return record;
  }
  let view = post.body as QueryView | undefined;
  const id = view?.id;
  while (view?.status !== "done" && view?.status !== "failed") {
    const left = drainDeadline - performance.now();
    if (id === undefined) {
      record.outcome = "lost"; // a 202 without an id: nothing to follow
      return record;
    }
    if (left <= 0) return record; // unfinished: still queued or assigned at the drain deadline
    record.followUps += 1;
    const get = await oneShot(host, port, { method: "GET", path: `/api/queries/${encodeURIComponent(id)}?wait=${Math.min(30_000, Math.ceil(left))}` }, POST_TIMEOUT_MS);
    if (get.error !== undefined) {
      record.error = get.error;
      record.outcome = "lost"; // the master is no longer reachable
      return record;
    }
    if (get.status === 404) {
      record.outcome = "lost"; // the master no longer knows it
      return record;
    }
    if (get.status !== 200) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      continue;
    }
    view = get.body as QueryView;
  }
  record.latencyMs = performance.now() - sentAt;
  record.outcome = view.status === "done" ? "answered" : "failed";
  const created = view.timings?.created_ms;
  const assigned = view.timings?.assigned_ms;
  if (typeof created === "number" && typeof assigned === "number") record.queueMs = assigned - created;
  return record;
}
