// The master's REST API as a client (plain HTTP, or HTTPS trusting a given CA; the
// optional bearer token and session id): used by the tests, the benchmarks,
// `npm run evidence` and the image smoke test.
import { request as httpRequest, type ClientRequest, type IncomingHttpHeaders, type IncomingMessage } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { eventually } from "./ports";

export interface WorkerView {
  id: string;
  language: string;
  node: string;
  status: "idle" | "busy" | "offline";
  task_id: string | null;
  last_seen_ms: number;
}

export interface QueryView {
  id: string;
  status: "queued" | "assigned" | "done" | "failed";
  query: string;
  position: number;
  answer: string | null;
  error: string | null;
  provider: string | null;
  worker: { id: string; language: string; node: string } | null;
  timings: Record<string, number | null>;
  attempts: number;
}

/**
 * How to reach a master whose front door is closed (see images/master/README.md).
 * Every field is optional: without them the calls are plain, as against a
 * master with access control off.
 */
export interface ApiOptions {
  /** The web token (WEB_AUTH_TOKEN), sent as `Authorization: Bearer`. */
  token?: string;
  /** CA certificate(s) to trust for https:// URLs; nothing else is trusted then. */
  ca?: string | Buffer;
  /** X-Session-Id, sent on POST and GET: a bearer client reads only its own session's queries. */
  sessionId?: string;
}

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
}

const agents = new Map<string | Buffer, HttpsAgent>();

/** One request with node:http(s) (fetch cannot trust a given CA in Node 20). */
export function request(url: string, init: { method?: string; headers?: Record<string, string>; body?: string }, options: ApiOptions = {}): Promise<Reply> {
  const target = new URL(url);
  const headers: Record<string, string> = { ...init.headers };
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
  if (options.sessionId !== undefined) headers["x-session-id"] = options.sessionId;
  if (init.body !== undefined) headers["content-length"] = String(Buffer.byteLength(init.body));
  return new Promise((resolve, reject) => {
    const onReply = (res: IncomingMessage): void => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString("utf8") }));
      res.on("error", reject);
    };
    const method = init.method ?? "GET";
    let req: ClientRequest;
    if (target.protocol === "https:") {
      let agent = options.ca === undefined ? undefined : agents.get(options.ca);
      if (options.ca !== undefined && agent === undefined) {
        agent = new HttpsAgent({ ca: options.ca, keepAlive: true });
        agents.set(options.ca, agent);
      }
      req = httpsRequest(target, { method, headers, agent }, onReply);
    } else {
      req = httpRequest(target, { method, headers }, onReply);
    }
    req.on("error", reject);
    req.end(init.body);
  });
}

function parse(reply: Reply): Record<string, unknown> {
  return reply.text === "" ? {} : (JSON.parse(reply.text) as Record<string, unknown>);
}

/** The third argument is the session id (as before) or the options. */
export async function postQuery(
  baseUrl: string,
  body: { query: string; apiKey?: string },
  sessionOrOptions?: string | ApiOptions,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const options = typeof sessionOrOptions === "string" ? { sessionId: sessionOrOptions } : (sessionOrOptions ?? {});
  const reply = await request(`${baseUrl}/api/queries`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) }, options);
  return { status: reply.status, body: parse(reply) };
}

/** Posts a query that must be accepted, and returns its id. */
export async function submit(baseUrl: string, query: string, apiKey?: string, options: ApiOptions = {}): Promise<string> {
  const { status, body } = await postQuery(baseUrl, apiKey === undefined ? { query } : { query, apiKey }, options);
  if (status !== 202 || typeof body.id !== "string") throw new Error(`query refused: ${status} ${JSON.stringify(body)}`);
  return body.id;
}

export async function getQuery(baseUrl: string, id: string, waitMs = 0, options: ApiOptions = {}): Promise<QueryView> {
  const reply = await request(`${baseUrl}/api/queries/${encodeURIComponent(id)}${waitMs > 0 ? `?wait=${waitMs}` : ""}`, {}, options);
  if (reply.status !== 200) throw new Error(`GET query ${id}: HTTP ${reply.status}`);
  return JSON.parse(reply.text) as QueryView;
}

/** Signs in with the token (POST /api/session) and returns the `Cookie` value to send back. */
export async function signIn(baseUrl: string, token: string, options: Pick<ApiOptions, "ca"> = {}): Promise<string> {
  const reply = await request(`${baseUrl}/api/session`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ token }) }, options);
  const cookie = reply.headers["set-cookie"]?.[0];
  if (reply.status !== 204 || cookie === undefined) throw new Error(`sign-in refused: HTTP ${reply.status} ${reply.text}`);
  return cookie.split(";")[0] ?? "";
}

/** Waits until the query is done or failed (long-polls the master). */
export async function waitForAnswer(baseUrl: string, id: string, timeoutMs = 60_000, options: ApiOptions = {}): Promise<QueryView> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let view: QueryView | undefined;
    try {
      view = await getQuery(baseUrl, id, Math.min(10_000, Math.max(1, deadline - Date.now())), options);
    } catch (error) {
      // An unknown id will not become known: fail now. Anything else may be a
      // master restarting in the test; keep asking until the deadline.
      if (error instanceof Error && error.message.includes("HTTP 404")) throw error;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    if (view !== undefined && (view.status === "done" || view.status === "failed")) return view;
    if (Date.now() > deadline) throw new Error(`query ${id} not finished after ${timeoutMs} ms: ${JSON.stringify(view)}`);
  }
}

export async function listWorkers(baseUrl: string, options: ApiOptions = {}): Promise<WorkerView[]> {
  const reply = await request(`${baseUrl}/api/workers`, {}, options);
  if (reply.status !== 200) throw new Error(`GET /api/workers: HTTP ${reply.status}`);
  return JSON.parse(reply.text) as WorkerView[];
}

/** Waits until every listed worker id shows as idle on the master. */
export async function waitForIdleWorkers(baseUrl: string, ids: readonly string[], timeoutMs = 60_000, options: ApiOptions = {}): Promise<WorkerView[]> {
  return eventually(`workers ${ids.join(", ")} idle`, async () => {
    const workers = await listWorkers(baseUrl, options);
    const ready = ids.every((id) => workers.some((w) => w.id === id && w.status === "idle"));
    return ready ? workers : undefined;
  }, timeoutMs, 200);
}
